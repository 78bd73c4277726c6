// Opening files that other users can plant at our names (/dev/shm/NAME,
// /dev/shm/sem.NAME). Every file found at a name is hostile until checked:
// never follow a symlink, never block on a FIFO, refuse anything but a
// regular file of the expected size, and refuse one another uid owns unless
// the caller said to accept it. napi-free: results are -errno, with a
// description of what was found for the error message.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>

namespace pipc {

// Whose existing object an open may adopt. JavaScript's `owner` option:
// 'self' (the default) is our effective uid, 'any' accepts every owner, a
// number is that uid. Root is not special: root adopts only root's objects
// by default.
struct OwnerPolicy {
  bool any = false;
  uid_t uid = 0;

  static OwnerPolicy Self();
  // From the value JavaScript passes: < 0 is 'any', otherwise a uid.
  static OwnerPolicy FromJs(double v);
};

// Checks an open descriptor: a regular file (EISDIR for a directory, EINVAL
// for any other kind), owned as `owner` allows (EPERM), at least `min_size`
// bytes long (EINVAL). Returns 0 or -errno; on failure *why says what is
// there ("is a FIFO, not a regular file", "is owned by uid 65534").
int CheckShmFile(int fd, const OwnerPolicy& owner, off_t min_size,
                 struct stat* out, std::string* why);

// shm_open(name) without following a symlink or blocking on a FIFO (glibc
// passes the flags on to open(2) on /dev/shm/NAME), then CheckShmFile. With
// O_CREAT|O_EXCL the file is our own new one and only its kind is checked.
// O_NONBLOCK is cleared again before returning. Returns the descriptor
// (O_CLOEXEC) or -errno; retries EINTR.
int OpenShmFile(const char* name, int flags, mode_t mode,
                const OwnerPolicy& owner, off_t min_size, struct stat* out,
                std::string* why);

// Creates a segment of `size` bytes in /dev/shm under no name (O_TMPFILE),
// lets `init` write its header through a temporary mapping, then links it at
// `path`: an opener sees either no file or a complete one, never a half-made
// header. Returns 0 with *out_fd (O_CLOEXEC, read-write), or an errno with
// *syscall naming the call that failed (EEXIST from "link": someone else's
// segment got there first).
int CreateLinkedShmFile(const char* path, mode_t mode, size_t size,
                        const std::function<void(void*)>& init, int* out_fd,
                        const char** syscall);

// Opens the /dev/shm file at `path` read-write (never through a symbolic
// link: O_NOFOLLOW), or, when `create` and nothing is there, makes it with
// CreateLinkedShmFile (init writes its header); with `exclusive`, an existing
// file is EEXIST. Returns the descriptor (O_CLOEXEC, O_NONBLOCK), *created
// saying which; or -errno with *syscall naming the call that failed.
int OpenOrCreateShmFile(const char* path, bool create, bool exclusive, mode_t mode, size_t size,
                        const std::function<void(void*)>& init, bool* created,
                        const char** syscall);

}  // namespace pipc
