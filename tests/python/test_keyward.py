"""The Python package (over the C API) against a dev keywardd, crossed with
the C++ CLI.  Run by tests/python/run.sh, which sets KEYWARD_TEST_DIR (the
dev setup), KEYWARD_CLI and KEYWARD_LIBRARY."""
import os
import subprocess
import tempfile
import unittest

import keyward

DEV = os.environ["KEYWARD_TEST_DIR"]
CLI = os.environ["KEYWARD_CLI"]
APP = os.path.join(DEV, "app.yaml")


def cli(*args, stdin=None):
    return subprocess.run([CLI, "--config", APP, *args], input=stdin, capture_output=True,
                          check=False)


class KeywardPythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = keyward.Client(APP)
        cls.cards = cls.client.encryptor("py/cards")
        cls.notes = cls.client.encryptor("py/notes")

    def test_round_trip_returns_context_and_key(self):
        m = self.cards.encrypt(b"4111 1111 1111 1111", {"customer": "42"})
        d = self.cards.decrypt(m, {"customer": "42"})
        self.assertEqual(d.plaintext, b"4111 1111 1111 1111")
        self.assertEqual(d.context, {"customer": "42"})
        self.assertEqual(d.key_name, "py/cards")
        self.assertEqual(d.key_version, 1)
        self.assertEqual(self.cards.decrypt(m).context, {"customer": "42"})

    def test_binary_and_empty_plaintexts(self):
        for data in (b"", bytes(range(256)) * 1000):
            self.assertEqual(self.cards.decrypt(self.cards.encrypt(data)).plaintext, data)

    def test_python_encrypts_and_the_cli_decrypts(self):
        m = self.cards.encrypt(b"from python", {"tenant": "acme"})
        with tempfile.NamedTemporaryFile(suffix=".kw") as f:
            f.write(m)
            f.flush()
            r = cli("decrypt", "--context", "tenant=acme", f.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"from python")

    def test_the_cli_encrypts_and_python_decrypts(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "m.kw")
            r = cli("encrypt", "--key", "py/cards", "--context", "tenant=acme", "-o", out, "-",
                    stdin=b"from the cli")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                m = f.read()
        self.assertEqual(self.cards.decrypt(m, {"tenant": "acme"}).plaintext, b"from the cli")

    def test_errors_carry_code_and_name(self):
        m = bytearray(self.cards.encrypt(b"secret", {"customer": "42"}))
        m[-3] ^= 1
        with self.assertRaises(keyward.Error) as e:
            self.cards.decrypt(bytes(m))
        self.assertEqual(e.exception.code, keyward.DATA_LOSS)
        self.assertEqual(e.exception.name, "authentication-failed")
        good = self.cards.encrypt(b"secret", {"customer": "42", "table": "cards"})
        with self.assertRaises(keyward.Error) as e:
            self.cards.decrypt(good, {"customer": "42"})
        self.assertEqual(e.exception.name, "context-mismatch")
        self.assertEqual(self.cards.decrypt(good, {"customer": "42"},
                                            allow_extra_pairs=True).plaintext, b"secret")
        with self.assertRaises(keyward.Error) as e:
            self.cards.decrypt(self.notes.encrypt(b"a note"))
        self.assertEqual(e.exception.code, keyward.FAILED_PRECONDITION)
        self.assertEqual(e.exception.name, "key-mismatch")
        with self.assertRaises(keyward.Error) as e:
            self.cards.decrypt(b"not a message")
        self.assertEqual(e.exception.code, keyward.INVALID_ARGUMENT)
        with self.assertRaises(keyward.Error) as e:
            self.client.encryptor("bad name!")
        self.assertEqual(e.exception.code, keyward.INVALID_ARGUMENT)
        with self.assertRaises(keyward.Error) as e:
            keyward.Client(os.path.join(DEV, "missing.yaml"))
        self.assertEqual(e.exception.code, keyward.NOT_FOUND)

    def test_nul_characters_are_refused_not_truncated(self):
        m = self.cards.encrypt(b"x", {"user": "alice"})
        with self.assertRaises(ValueError):
            self.cards.decrypt(m, {"user": "alice\0evil"})
        with self.assertRaises(ValueError):
            self.cards.encrypt(b"x", {"user\0": "a"})
        with self.assertRaises(ValueError):
            self.client.encryptor("py/cards\0other")

    def test_library_version(self):
        self.assertRegex(keyward.library_version(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
