#include "safe-open.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "posix.h"

namespace pipc {

OwnerPolicy OwnerPolicy::Self() {
  OwnerPolicy p;
  p.uid = geteuid();
  return p;
}

OwnerPolicy OwnerPolicy::FromJs(double v) {
  OwnerPolicy p;
  if (v < 0) {
    p.any = true;
  } else {
    p.uid = static_cast<uid_t>(v);
  }
  return p;
}

namespace {

const char* KindOf(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace

int CheckShmFile(int fd, const OwnerPolicy& owner, off_t min_size,
                 struct stat* out, std::string* why) {
  struct stat st;
  if (fstat(fd, &st) == -1) {
    int e = errno;
    if (why) *why = "cannot stat what is there";
    return -e;
  }
  if (out) *out = st;
  if (!S_ISREG(st.st_mode)) {
    if (why) *why = std::string("is ") + KindOf(st.st_mode) + ", not a regular file";
    return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
  }
  if (!owner.any && st.st_uid != owner.uid) {
    if (why) {
      *why = "is owned by uid " + std::to_string(st.st_uid) + ", not uid " +
             std::to_string(owner.uid) + " (pass owner: 'any' or owner: " +
             std::to_string(st.st_uid) + " to accept it)";
    }
    return -EPERM;
  }
  if (st.st_size < min_size) {
    if (why) {
      *why = "holds " + std::to_string(static_cast<long long>(st.st_size)) +
             " bytes, fewer than the " +
             std::to_string(static_cast<long long>(min_size)) + " it must hold";
    }
    return -EINVAL;
  }
  return 0;
}

int OpenShmFile(const char* name, int flags, mode_t mode,
                const OwnerPolicy& owner, off_t min_size, struct stat* out,
                std::string* why) {
  const int all = flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int fd = RetryEintr([&] { return shm_open(name, all, mode); });
  if (fd == -1) {
    int e = errno;
    struct stat st;
    // glibc's shm_open turns open(2)'s EISDIR into EINVAL: say what is there.
    if (e == EINVAL && lstat(("/dev/shm" + std::string(name)).c_str(), &st) == 0 &&
        S_ISDIR(st.st_mode)) {
      e = EISDIR;
    }
    if (why) {
      if (e == EISDIR) {
        *why = "'/dev/shm" + std::string(name) + "' is a directory, not a regular file";
      } else if (e == ELOOP) {
        *why = "'/dev/shm" + std::string(name) + "' is a symbolic link, which is never followed";
      } else {
        why->clear();
      }
    }
    return -e;
  }
  const bool created = (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
  OwnerPolicy check = owner;
  if (created) check.any = true;
  int r = CheckShmFile(fd, check, created ? 0 : min_size, out, why);
  if (r == 0 && !(flags & O_NONBLOCK)) {
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
      r = -errno;
      if (why) why->clear();
    }
  }
  if (r != 0) {
    close(fd);
    if (why && !why->empty()) *why = "'/dev/shm" + std::string(name) + "' " + *why;
    return r;
  }
  return fd;
}

int CreateLinkedShmFile(const char* path, mode_t mode, size_t size,
                        const std::function<void(void*)>& init, int* out_fd,
                        const char** syscall) {
  int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
  if (fd == -1) {
    *syscall = "open";
    return errno;
  }
  auto fail = [&](const char* call) {
    int e = errno;
    close(fd);
    *syscall = call;
    return e;
  };
  if (RetryEintr([&] { return ftruncate(fd, static_cast<off_t>(size)); }) == -1) {
    return fail("ftruncate");
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail("mmap");
  init(p);
  munmap(p, size);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == -1) return fail("link");
  *out_fd = fd;
  return 0;
}

int OpenOrCreateShmFile(const char* path, bool create, bool exclusive, mode_t mode, size_t size,
                        const std::function<void(void*)>& init, bool* created,
                        const char** syscall) {
  *created = false;
  *syscall = "open";
  // Another process may create or unlink the name between our open and our
  // link: each attempt either finds a file, makes one, or loses that race
  // and looks again.
  for (int attempt = 0; attempt < 8; attempt++) {
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      if (create && exclusive) {
        close(fd);
        return -EEXIST;
      }
      return fd;
    }
    if (errno != ENOENT || !create) return -errno;
    int e = CreateLinkedShmFile(path, mode, size, init, &fd, syscall);
    if (e == 0) {
      *created = true;
      return fd;
    }
    if (e != EEXIST || exclusive) return -e;
    *syscall = "open";
  }
  return -ENOENT;
}

}  // namespace pipc
