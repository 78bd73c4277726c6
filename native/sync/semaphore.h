// POSIX named semaphores (sem_open and friends).
#pragma once

#include <semaphore.h>

#include <atomic>
#include <memory>
#include <string>

namespace pipc {

// One sem_open'ed semaphore. JavaScript holds it through an external; each
// in-flight wait job holds a "user" too, so close() while a job still sleeps in
// sem_clockwait defers sem_close until the job is gone.
struct Sem {
  static constexpr uint32_t kMagic = 0x53454d31;  // "SEM1"
  uint32_t magic = kMagic;
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

}  // namespace pipc
