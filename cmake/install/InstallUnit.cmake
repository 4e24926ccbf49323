# Installs deploy/systemd/keywardd.service with ExecStart pointing at the
# installed keywardd.  Runs at install time (KEYWARD_UNIT_SOURCE is set by
# the install rule before it).
file(READ "${KEYWARD_UNIT_SOURCE}" unit)
string(REPLACE "/usr/local/bin/keywardd" "${CMAKE_INSTALL_PREFIX}/bin/keywardd" unit "${unit}")
set(dest "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
file(MAKE_DIRECTORY "${dest}")
file(WRITE "${dest}/keywardd.service" "${unit}")
message(STATUS "Installing: ${dest}/keywardd.service")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${dest}/keywardd.service")
