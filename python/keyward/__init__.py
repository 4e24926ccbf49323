"""Keyward for Python: envelope encryption through keywardd.

A thin layer over libkeyward's C API (include/keyward/keyward.h) with
ctypes: no compiled extension.  It finds libkeyward through
$KEYWARD_LIBRARY (a path), then the dynamic linker (libkeyward.so.0.1).

    import keyward
    client = keyward.Client("/etc/keyward/app.yaml")
    cards = client.encryptor("payments/cards")
    message = cards.encrypt(b"4111 1111 1111 1111", {"customer": "42"})
    opened = cards.decrypt(message, {"customer": "42"})
    opened.plaintext, opened.context, opened.key_name, opened.key_version

Plaintexts come back as Python bytes, which Python cannot wipe: keep them
short-lived.  Errors raise keyward.Error with .code (the canonical status code, e.g.
keyward.UNAVAILABLE), .name (the Keyward error name, e.g.
"authentication-failed") and .message.
"""
import ctypes
import ctypes.util
import os

__all__ = ["Client", "Encryptor", "Decrypted", "Error", "library_version",
           "INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION",
           "UNAVAILABLE", "DATA_LOSS"]

INVALID_ARGUMENT = 3
NOT_FOUND = 5
PERMISSION_DENIED = 7
FAILED_PRECONDITION = 9
UNAVAILABLE = 14
DATA_LOSS = 15

_SONAME = "libkeyward.so.0.1"
_ANY, _EXACT, _AT_LEAST = 0, 1, 2


def _load():
    # The exact SONAME first: another 0.x release has another ABI.
    path = os.environ.get("KEYWARD_LIBRARY") or _SONAME
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"keyward: cannot load {path}: {e}. Install the keyward package, "
            "or set KEYWARD_LIBRARY to the path of libkeyward.so") from e


_lib = _load()
_p = ctypes.c_void_p
_lib.kw_version.restype = ctypes.c_char_p
for _name in ("kw_error_name", "kw_error_message"):
    getattr(_lib, _name).restype = ctypes.c_char_p
    getattr(_lib, _name).argtypes = [_p]
_lib.kw_error_code.argtypes = [_p]
_lib.kw_error_free.argtypes = [_p]
_lib.kw_client_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(_p), ctypes.POINTER(_p)]
_lib.kw_client_free.argtypes = [_p]
_lib.kw_encryptor_new.argtypes = [_p, ctypes.c_char_p, ctypes.POINTER(_p), ctypes.POINTER(_p)]
_lib.kw_encryptor_free.argtypes = [_p]
_strs = ctypes.POINTER(ctypes.c_char_p)
_lib.kw_encrypt.argtypes = [_p, ctypes.c_char_p, ctypes.c_size_t, _strs, _strs, ctypes.c_size_t,
                            ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)),
                            ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(_p)]
_lib.kw_decrypt.argtypes = [_p, ctypes.c_char_p, ctypes.c_size_t, _strs, _strs, ctypes.c_size_t,
                            ctypes.c_int, ctypes.POINTER(_p), ctypes.POINTER(_p)]
_lib.kw_decrypted_plaintext.restype = ctypes.POINTER(ctypes.c_uint8)
_lib.kw_decrypted_plaintext.argtypes = [_p, ctypes.POINTER(ctypes.c_size_t)]
_lib.kw_decrypted_context_count.restype = ctypes.c_size_t
_lib.kw_decrypted_context_count.argtypes = [_p]
for _name in ("kw_decrypted_context_key", "kw_decrypted_context_value"):
    getattr(_lib, _name).restype = ctypes.c_char_p
    getattr(_lib, _name).argtypes = [_p, ctypes.c_size_t]
_lib.kw_decrypted_key_name.restype = ctypes.c_char_p
_lib.kw_decrypted_key_name.argtypes = [_p]
_lib.kw_decrypted_key_version.restype = ctypes.c_uint32
_lib.kw_decrypted_key_version.argtypes = [_p]
_lib.kw_decrypted_free.argtypes = [_p]
_lib.kw_bytes_free.argtypes = [ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t]


class Error(Exception):
    """A failed Keyward call: .code (canonical status), .name, .message."""

    def __init__(self, code, name, message):
        super().__init__(f"{message} [{name or code}]")
        self.code, self.name, self.message = code, name, message


def _check(code, err):
    if code == 0:
        return
    e = Error(_lib.kw_error_code(err), _lib.kw_error_name(err).decode(),
              _lib.kw_error_message(err).decode())
    _lib.kw_error_free(err)
    raise e


def _text(s, what):
    # ctypes would cut a string at its first NUL: refuse instead of checking
    # or storing something other than what the caller gave.
    if "\0" in s:
        raise ValueError(f"keyward: {what} contains a NUL character")
    return s.encode()


def _context(ctx):
    ctx = ctx or {}
    for k, v in ctx.items():
        _text(k, "a context key")
        _text(v, "a context value")
    keys = (ctypes.c_char_p * max(1, len(ctx)))(*[k.encode() for k in ctx])
    values = (ctypes.c_char_p * max(1, len(ctx)))(*[ctx[k].encode() for k in ctx])
    return keys, values, len(ctx)


def library_version():
    return _lib.kw_version().decode()


class Decrypted:
    """A decrypted message: plaintext, its authenticated context and key."""

    def __init__(self, plaintext, context, key_name, key_version):
        self.plaintext, self.context = plaintext, context
        self.key_name, self.key_version = key_name, key_version


class Encryptor:
    """Encrypts and decrypts under one key; refuses other keys' messages."""

    def __init__(self, handle, key_name):
        self._h, self.key_name = handle, key_name

    def encrypt(self, plaintext: bytes, context=None) -> bytes:
        keys, values, n = _context(context)
        out = ctypes.POINTER(ctypes.c_uint8)()
        out_len = ctypes.c_size_t()
        err = _p()
        _check(_lib.kw_encrypt(self._h, plaintext, len(plaintext), keys, values, n,
                               ctypes.byref(out), ctypes.byref(out_len), ctypes.byref(err)), err)
        try:
            return ctypes.string_at(out, out_len.value)
        finally:
            _lib.kw_bytes_free(out, out_len.value)

    def decrypt(self, message: bytes, context=None, allow_extra_pairs=False) -> Decrypted:
        """With `context`, the message's must equal it (or hold at least it
        with allow_extra_pairs=True); without, any context is returned."""
        keys, values, n = _context(context)
        match = _ANY if context is None else (_AT_LEAST if allow_extra_pairs else _EXACT)
        d, err = _p(), _p()
        _check(_lib.kw_decrypt(self._h, message, len(message), keys, values, n, match,
                               ctypes.byref(d), ctypes.byref(err)), err)
        try:
            size = ctypes.c_size_t()
            data = _lib.kw_decrypted_plaintext(d, ctypes.byref(size))
            pairs = {_lib.kw_decrypted_context_key(d, i).decode():
                     _lib.kw_decrypted_context_value(d, i).decode()
                     for i in range(_lib.kw_decrypted_context_count(d))}
            return Decrypted(ctypes.string_at(data, size.value), pairs,
                             _lib.kw_decrypted_key_name(d).decode(),
                             _lib.kw_decrypted_key_version(d))
        finally:
            _lib.kw_decrypted_free(d)

    def close(self):
        if self._h:
            _lib.kw_encryptor_free(self._h)
            self._h = None

    def __del__(self):
        self.close()


class Client:
    """A connection to keywardd from a client config file."""

    def __init__(self, config_path: str):
        self._h, err = _p(), _p()
        _check(_lib.kw_client_connect(_text(config_path, "the config path"), ctypes.byref(self._h),
                                      ctypes.byref(err)), err)

    def encryptor(self, key_name: str) -> Encryptor:
        h, err = _p(), _p()
        _check(_lib.kw_encryptor_new(self._h, _text(key_name, "the key name"), ctypes.byref(h),
                                     ctypes.byref(err)), err)
        return Encryptor(h, key_name)

    def close(self):
        if self._h:
            _lib.kw_client_free(self._h)
            self._h = None

    def __del__(self):
        self.close()
