// POSIX named semaphores (sem_open and friends).
#pragma once

#include <semaphore.h>

#include <atomic>
#include <memory>
#include <string>

#include "../core/handle.h"

namespace pipc {

// One sem_open'ed semaphore. JavaScript holds it through an external; each
// in-flight wait job holds a "user" too, so close() while a job still sleeps in
// sem_clockwait defers sem_close until the job is gone.
struct Sem {
  sem_t* sem = nullptr;
  std::string name;
  std::atomic<bool> closed{false};
  std::atomic<int> users{1};

  ~Sem();
  void AddUser() { users.fetch_add(1, std::memory_order_relaxed); }
  void DropUser();
  // Marks closed; returns false if it already was.
  bool Close();
};

// The handle JavaScript holds owns one reference.
using SemPtr = std::shared_ptr<Sem>;

template <>
struct HandleTraits<SemPtr> {
  static constexpr HandleKind kind = HandleKind::kSemaphore;
  static bool Closed(const SemPtr& s) {
    return s->closed.load(std::memory_order_relaxed);
  }
  static const std::string& Name(const SemPtr& s) { return s->name; }
};

}  // namespace pipc
