// POSIX message queues (mq_open and friends).
//
// The descriptor is opened O_NONBLOCK so that send and receive never block the
// event loop; on Linux an mqd_t is a file descriptor, so readiness is watched
// with one uv_poll_t per open queue on the environment's own loop (worker
// threads included) and no thread at all. The poll handle is started only
// while somebody in JavaScript waits, so an idle queue never keeps the process
// alive. JavaScript (lib/queue.ts) keeps the FIFO of waiters and serves them
// in order when the descriptor reports readiness; level-triggered polling
// means a readiness that arrives between two waits is never lost.
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sys/stat.h>
#include <uv.h>

#include <string>
#include <unordered_set>
#include <vector>

#include "../addon.h"
#include "../core/args.h"
#include "../core/errors.h"
#include "../core/handle.h"
#include "../core/posix.h"

namespace pipc {

struct Mq {
  mqd_t mqd = -1;
  std::string name;
  bool closed = false;
  long msgsize = 0;
  unsigned last_priority = 0;
  // mq_receive needs a buffer of at least mq_msgsize bytes.
  std::vector<char> buf;
  uv_poll_t* poll = nullptr;
  // What JavaScript's waiters need now (UV_READABLE / UV_WRITABLE).
  int want = 0;
  // What the poll handle watches: a superset of `want`. Interest that is no
  // longer wanted is dropped lazily, when it fires (see OnPoll), so a loop
  // that waits again right away costs no epoll_ctl and no extra loop turn.
  int active = 0;
  napi_env env = nullptr;
  napi_ref callback = nullptr;
  // The environment's state, which lists the queue until it is closed.
  AddonData* owner = nullptr;
};

template <>
struct HandleTraits<Mq> {
  static constexpr HandleKind kind = HandleKind::kMessageQueue;
  static bool Closed(const Mq& mq) { return mq.closed; }
  static const std::string& Name(const Mq& mq) { return mq.name; }
};

namespace {

void OnPollClosed(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

// JS thread. Stops watching, releases the descriptor; idempotent. The Mq
// itself is freed by the external's finalizer only.
void CloseMq(Mq* mq) {
  if (mq->closed) return;
  mq->closed = true;
  if (mq->poll != nullptr) {
    // The poll handle must let go of the descriptor before it is closed.
    uv_poll_stop(mq->poll);
    mq->poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(mq->poll), OnPollClosed);
    mq->poll = nullptr;
  }
  if (mq->callback != nullptr) {
    napi_delete_reference(mq->env, mq->callback);
    mq->callback = nullptr;
  }
  if (mq->mqd != -1) {
    mq_close(mq->mqd);
    mq->mqd = -1;
  }
  if (mq->owner != nullptr) {
    mq->owner->queues.erase(mq);
    mq->owner = nullptr;
  }
  std::vector<char>().swap(mq->buf);
}

void FinalizeMq(napi_env, void* data, void*) {
  auto* mq = static_cast<Mq*>(data);
  CloseMq(mq);
  delete mq;
}

// 0 on success, EAGAIN when full, another errno on failure.
inline int SendOnce(Mq* mq, const char* data, size_t len, unsigned prio) {
  int r = RetryEintr([&] { return mq_send(mq->mqd, data, len, prio); });
  return r == 0 ? 0 : errno;
}

// Message length, or -errno (-EAGAIN when empty).
inline ssize_t ReceiveOnce(Mq* mq) {
  unsigned prio = 0;
  ssize_t n = RetryEintr([&] {
    return mq_receive(mq->mqd, mq->buf.data(), mq->buf.size(), &prio);
  });
  if (n < 0) return -errno;
  mq->last_priority = prio;
  return n;
}

// Waits until the descriptor reports `events` or deadline_ns passes (-1:
// never). 0 when ready, ETIMEDOUT, or an errno. For the ...Sync forms only.
int PollBlocking(Mq* mq, short events, int64_t deadline_ns) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline_ns >= 0) {
      int64_t left = deadline_ns - MonotonicNs();
      if (left <= 0) return ETIMEDOUT;
      timeout_ms = static_cast<int>((left + 999999) / 1000000);
    }
    pollfd p{mq->mqd, events, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r > 0) return 0;
    if (r == 0) continue;  // re-check the deadline (poll rounds up)
    if (errno != EINTR) return errno;
  }
}

inline int64_t DeadlineFromMs(double timeout_ms) {
  return timeout_ms < 0 ? -1
                        : MonotonicNs() + static_cast<int64_t>(timeout_ms * 1e6);
}

// mqOpen(name, create, exclusive, mode, maxmsg, msgsize) -> handle.
// maxmsg/msgsize 0: the system defaults (a NULL attr).
Napi::Value MqOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool create = info[1].ToBoolean();
  bool exclusive = info[2].ToBoolean();
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value());
  long maxmsg = info[4].As<Napi::Number>().Int64Value();
  long msgsize = info[5].As<Napi::Number>().Int64Value();
  int flags = O_RDWR | O_NONBLOCK | O_CLOEXEC;
  mqd_t d;
  if (create) {
    flags |= O_CREAT | (exclusive ? O_EXCL : 0);
    mq_attr attr{};
    attr.mq_maxmsg = maxmsg;
    attr.mq_msgsize = msgsize;
    d = mq_open(name.c_str(), flags, mode,
                (maxmsg > 0 && msgsize > 0) ? &attr : nullptr);
  } else {
    d = mq_open(name.c_str(), flags);
  }
  if (d == static_cast<mqd_t>(-1)) ThrowIPCError(env, errno, "mq_open", name);
  mq_attr attr{};
  if (mq_getattr(d, &attr) == -1) {
    int e = errno;
    mq_close(d);
    ThrowIPCError(env, e, "mq_getattr", name);
  }
  auto* mq = new Mq();
  mq->mqd = d;
  mq->name = name;
  mq->msgsize = attr.mq_msgsize;
  mq->buf.resize(static_cast<size_t>(attr.mq_msgsize));
  mq->env = env;
  Napi::Value handle = Wrap(env, mq, FinalizeMq, [](Mq* m) {
    CloseMq(m);
    delete m;
  });
  mq->owner = AddonData::Get(env);
  mq->owner->queues.insert(mq);
  return handle;
}

// mqAttr(h) -> { maxmsg, msgsize, curmsgs, mode, uid }
Napi::Value MqAttr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mq* mq = &UnwrapOpen<Mq>(info[0], "mq_getattr");
  mq_attr attr{};
  if (mq_getattr(mq->mqd, &attr) == -1) {
    ThrowIPCError(env, errno, "mq_getattr", mq->name);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("maxmsg", Napi::Number::New(env, attr.mq_maxmsg));
  o.Set("msgsize", Napi::Number::New(env, attr.mq_msgsize));
  o.Set("curmsgs", Napi::Number::New(env, attr.mq_curmsgs));
  struct stat st;
  if (fstat(mq->mqd, &st) == 0) {
    o.Set("mode", Napi::Number::New(env, st.st_mode & 07777));
    o.Set("uid", Napi::Number::New(env, st.st_uid));
  }
  return o;
}

// mqCurmsgs(h) -> number. Plain N-API: qsize() is cheap and often polled.
napi_value MqCurmsgs(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 1> call(env, cbinfo, "mq_getattr");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  mq_attr attr{};
  if (mq_getattr(mq->mqd, &attr) == -1) {
    return ThrowIPCErrorC(env, errno, "mq_getattr", mq->name);
  }
  napi_value result;
  napi_create_int64(env, attr.mq_curmsgs, &result);
  return result;
}

// One non-blocking send, as JavaScript sees it: true when sent, false when
// the queue is full, an IPCError otherwise.
inline napi_value SendResult(napi_env env, Mq* mq, const char* data,
                             size_t len, uint32_t prio) {
  int r = SendOnce(mq, data, len, prio);
  if (r != 0 && r != EAGAIN) return ThrowIPCErrorC(env, r, "mq_send", mq->name);
  napi_value result;
  napi_get_boolean(env, r == 0, &result);
  return result;
}

// mqSend(h, bytes, priority) -> boolean: false when the queue is full.
napi_value MqSend(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 3> call(env, cbinfo, "mq_send");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  napi_value* argv = call.argv;
  const char* data;
  size_t len;
  if (!GetBytes(env, argv[1], &data, &len)) return nullptr;
  uint32_t prio = 0;
  napi_get_value_uint32(env, argv[2], &prio);
  return SendResult(env, mq, data, len, prio);
}

// mqSendText(h, text, priority) -> boolean: sends the UTF-8 of `text`,
// written into the queue's scratch buffer (no Buffer per message); false
// when the queue is full. The caller ensures 3 * text.length < mq_msgsize,
// so the text always fits; a text that would not is EMSGSIZE, never cut.
napi_value MqSendText(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 3> call(env, cbinfo, "mq_send");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  napi_value* argv = call.argv;
  size_t units = 0;
  if (napi_get_value_string_utf16(env, argv[1], nullptr, 0, &units) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "message must be a string");
    return nullptr;
  }
  if (units * 3 >= mq->buf.size()) {
    return ThrowIPCErrorC(env, EMSGSIZE, "mq_send", mq->name);
  }
  size_t len = 0;
  napi_get_value_string_utf8(env, argv[1], mq->buf.data(), mq->buf.size(), &len);
  uint32_t prio = 0;
  napi_get_value_uint32(env, argv[2], &prio);
  return SendResult(env, mq, mq->buf.data(), len, prio);
}

// mqSendMany(h, arrayOfBytes, priority, start) -> how many were sent from
// index `start` on before the queue was full.
napi_value MqSendMany(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 4> call(env, cbinfo, "mq_send");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  napi_value* argv = call.argv;
  uint32_t prio = 0, start = 0, length = 0;
  napi_get_value_uint32(env, argv[2], &prio);
  napi_get_value_uint32(env, argv[3], &start);
  napi_get_array_length(env, argv[1], &length);
  uint32_t sent = 0;
  for (uint32_t i = start; i < length; i++) {
    napi_value item;
    napi_get_element(env, argv[1], i, &item);
    const char* data;
    size_t len;
    if (!GetBytes(env, item, &data, &len)) return nullptr;
    int r = SendOnce(mq, data, len, prio);
    if (r == EAGAIN) break;
    if (r != 0) return ThrowIPCErrorC(env, r, "mq_send", mq->name);
    sent++;
  }
  napi_value result;
  napi_create_uint32(env, sent, &result);
  return result;
}

// mqReceive(h) -> Buffer, or null when the queue is empty.
napi_value MqReceive(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 1> call(env, cbinfo, "mq_receive");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  ssize_t n = ReceiveOnce(mq);
  napi_value result;
  if (n == -EAGAIN) {
    napi_get_null(env, &result);
    return result;
  }
  if (n < 0) return ThrowIPCErrorC(env, static_cast<int>(-n), "mq_receive", mq->name);
  napi_create_buffer_copy(env, static_cast<size_t>(n), mq->buf.data(), nullptr,
                          &result);
  return result;
}

// mqReceiveInto(h, buffer) -> the message length, or -1 when the queue is
// empty. The message lands in `buffer` (at least mq_msgsize bytes, owned by
// the Queue and reused): no Buffer is allocated per message; JavaScript
// decodes it (or copies it out) before the next receive.
napi_value MqReceiveInto(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 2> call(env, cbinfo, "mq_receive");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  napi_value* argv = call.argv;
  const char* data;
  size_t len;
  if (!GetBytes(env, argv[1], &data, &len)) return nullptr;
  unsigned prio = 0;
  ssize_t n = RetryEintr([&] {
    return mq_receive(mq->mqd, const_cast<char*>(data), len, &prio);
  });
  napi_value result;
  if (n < 0) {
    if (errno != EAGAIN) return ThrowIPCErrorC(env, errno, "mq_receive", mq->name);
    n = -1;
  } else {
    mq->last_priority = prio;
  }
  napi_create_int32(env, static_cast<int32_t>(n), &result);
  return result;
}

// mqReceiveMany(h, max) -> Buffer[] (empty when the queue is empty).
napi_value MqReceiveMany(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 2> call(env, cbinfo, "mq_receive");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  napi_value* argv = call.argv;
  uint32_t max = 0;
  napi_get_value_uint32(env, argv[1], &max);
  napi_value arr;
  napi_create_array(env, &arr);
  for (uint32_t i = 0; i < max; i++) {
    ssize_t n = ReceiveOnce(mq);
    if (n == -EAGAIN) break;
    if (n < 0) {
      // What was already taken must not be lost: hand it over and let the
      // next call report the failure.
      if (i > 0) break;
      return ThrowIPCErrorC(env, static_cast<int>(-n), "mq_receive", mq->name);
    }
    napi_value b;
    napi_create_buffer_copy(env, static_cast<size_t>(n), mq->buf.data(),
                            nullptr, &b);
    napi_set_element(env, arr, i, b);
  }
  return arr;
}

// mqLastPriority(h) -> the priority of the message last received.
napi_value MqLastPriority(napi_env env, napi_callback_info cbinfo) {
  HandleCall<Mq, 1> call(env, cbinfo, "mq_receive");
  if (call.self == nullptr) return nullptr;
  Mq* mq = call.self;
  napi_value result;
  napi_create_uint32(env, mq->last_priority, &result);
  return result;
}

// mqSendSync(h, bytes, priority, timeoutMs) -> boolean (false: timed out).
Napi::Value MqSendSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mq* mq = &UnwrapOpen<Mq>(info[0], "mq_send");
  const char* data;
  size_t len;
  if (!GetBytes(env, info[1], &data, &len)) throw env.GetAndClearPendingException();
  unsigned prio = info[2].As<Napi::Number>().Uint32Value();
  int64_t deadline = DeadlineFromMs(info[3].As<Napi::Number>().DoubleValue());
  for (;;) {
    int r = SendOnce(mq, data, len, prio);
    if (r == 0) return Napi::Boolean::New(env, true);
    if (r != EAGAIN) ThrowIPCError(env, r, "mq_send", mq->name);
    r = PollBlocking(mq, POLLOUT, deadline);
    if (r == ETIMEDOUT) return Napi::Boolean::New(env, false);
    if (r != 0) ThrowIPCError(env, r, "poll", mq->name);
  }
}

// mqReceiveSync(h, timeoutMs) -> Buffer, or null when timed out.
Napi::Value MqReceiveSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mq* mq = &UnwrapOpen<Mq>(info[0], "mq_receive");
  int64_t deadline = DeadlineFromMs(info[1].As<Napi::Number>().DoubleValue());
  for (;;) {
    ssize_t n = ReceiveOnce(mq);
    if (n >= 0) {
      return Napi::Buffer<char>::Copy(env, mq->buf.data(), static_cast<size_t>(n));
    }
    if (n != -EAGAIN) ThrowIPCError(env, static_cast<int>(-n), "mq_receive", mq->name);
    int r = PollBlocking(mq, POLLIN, deadline);
    if (r == ETIMEDOUT) return env.Null();
    if (r != 0) ThrowIPCError(env, r, "poll", mq->name);
  }
}

void OnPoll(uv_poll_t* handle, int status, int events);

// Narrows the poll to what is wanted: stops it when nothing is.
void Narrow(Mq* mq) {
  if (mq->want == 0) {
    uv_poll_stop(mq->poll);
    mq->active = 0;
  } else if (uv_poll_start(mq->poll, mq->want, OnPoll) == 0) {
    mq->active = mq->want;
  }
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  auto* mq = static_cast<Mq*>(handle->data);
  if (mq == nullptr || mq->callback == nullptr) return;
  if (status == 0) {
    // Readiness nobody waits for any more: stop watching it (once) instead
    // of waking up for it again.
    if ((events & ~mq->want) != 0) Narrow(mq);
    if ((events & mq->want) == 0) return;
  } else {
    mq->active = 0;  // libuv stopped the handle on the error
  }
  napi_env env = mq->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  cb = nullptr;
  napi_get_reference_value(env, mq->callback, &cb);
  napi_get_global(env, &recv);  // make_callback wants an object
  napi_create_int32(env, status, &argv[0]);
  napi_create_int32(env, events, &argv[1]);
  // make_callback, not call_function: this runs from the loop, so the
  // microtasks the callback queues (promise settlements) must run after it.
  if (cb != nullptr &&
      napi_make_callback(env, nullptr, recv, cb, 2, argv, &result) ==
          napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

// mqWatch(h, events, callback): the waiters now need UV_READABLE and/or
// UV_WRITABLE; 0: nobody waits. callback(status, events) runs on the event
// loop, repeatedly while a wanted readiness lasts. Widening starts the poll
// at once; narrowing only records the wish and unrefs the handle (an idle
// queue keeps nothing alive): the poll drops the interest the first time it
// fires unwanted, so waiting again before then costs no system call.
Napi::Value MqWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mq* mq = &UnwrapOpen<Mq>(info[0], "uv_poll_start");
  int want = info[1].As<Napi::Number>().Int32Value() &
             (UV_READABLE | UV_WRITABLE);
  if (mq->callback == nullptr) {
    if (!info[2].IsFunction()) {
      throw Napi::TypeError::New(env, "mqWatch needs a callback first");
    }
    // Weak while nobody waits: the callback closes over the Queue, and a
    // strong reference would keep an abandoned Queue from being collected.
    napi_create_reference(env, info[2], 0, &mq->callback);
  }
  if (want == mq->want) return env.Undefined();
  if ((want & ~mq->active) != 0) {
    if (mq->poll == nullptr) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
        ThrowIPCError(env, EINVAL, "napi_get_uv_event_loop", mq->name);
      }
      auto* p = new uv_poll_t();
      int r = uv_poll_init(loop, p, mq->mqd);
      if (r != 0) {
        delete p;
        ThrowIPCError(env, -r, "uv_poll_init", mq->name);
      }
      p->data = mq;
      mq->poll = p;
    }
    int r = uv_poll_start(mq->poll, mq->active | want, OnPoll);
    if (r != 0) ThrowIPCError(env, -r, "uv_poll_start", mq->name);
    mq->active |= want;
  }
  if (mq->poll != nullptr) {
    if (want != 0) {
      uv_ref(reinterpret_cast<uv_handle_t*>(mq->poll));
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(mq->poll));
    }
  }
  if (mq->want == 0) napi_reference_ref(env, mq->callback, nullptr);
  if (want == 0) napi_reference_unref(env, mq->callback, nullptr);
  mq->want = want;
  return env.Undefined();
}

// mqClose(h): idempotent.
Napi::Value MqClose(const Napi::CallbackInfo& info) {
  CloseMq(&Unwrap<Mq>(info[0]));
  return info.Env().Undefined();
}

Napi::Value MqUnlink(const Napi::CallbackInfo& info) {
  return CallWithName(info, mq_unlink, "mq_unlink");
}

}  // namespace

// Teardown (AddonData::Teardown, step 2): a worker thread's loop must have no
// handle of ours left when it is closed.
void CloseQueues(AddonData* data) {
  std::vector<Mq*> all(data->queues.begin(), data->queues.end());
  for (Mq* mq : all) CloseMq(mq);
}

void InitMq(Napi::Env env, Napi::Object exports) {
  exports.Set("mqOpen", Napi::Function::New(env, MqOpen));
  exports.Set("mqAttr", Napi::Function::New(env, MqAttr));
  SetRawFunction(env, exports, "mqCurmsgs", MqCurmsgs);
  SetRawFunction(env, exports, "mqSend", MqSend);
  SetRawFunction(env, exports, "mqSendText", MqSendText);
  SetRawFunction(env, exports, "mqSendMany", MqSendMany);
  SetRawFunction(env, exports, "mqReceive", MqReceive);
  SetRawFunction(env, exports, "mqReceiveMany", MqReceiveMany);
  SetRawFunction(env, exports, "mqReceiveInto", MqReceiveInto);
  SetRawFunction(env, exports, "mqLastPriority", MqLastPriority);
  exports.Set("mqSendSync", Napi::Function::New(env, MqSendSync));
  exports.Set("mqReceiveSync", Napi::Function::New(env, MqReceiveSync));
  exports.Set("mqWatch", Napi::Function::New(env, MqWatch));
  exports.Set("mqClose", Napi::Function::New(env, MqClose));
  exports.Set("mqUnlink", Napi::Function::New(env, MqUnlink));
  exports.Set("MQ_PRIO_MAX", Napi::Number::New(env, sysconf(_SC_MQ_PRIO_MAX)));
}

}  // namespace pipc
