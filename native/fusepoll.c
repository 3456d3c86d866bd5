/*
 * The /dev/fuse poll reader: lets the main thread wait for FUSE requests in
 * its own event loop (uv_poll on the descriptor) and read them itself.
 *
 * Without it the kernel transport reads /dev/fuse in worker threads, and each
 * request costs two thread wake-ups (the kernel wakes the reader, the reader
 * wakes the main thread through a message port) and a structured-clone hop.
 * On a 2-CPU machine that hop was a third of a metadata round trip. Node has
 * no way to poll an arbitrary descriptor, so this is the one piece of C in
 * the project: it watches a descriptor, reads into a Buffer without throwing
 * on EAGAIN (once, or spinning on an empty queue for a time budget), and sets
 * O_NONBLOCK. Everything else, including when to spin, stays in TypeScript
 * (fs/fuse/lowlevel/channel.ts, spin.ts, devPoll.ts).
 *
 * It also answers reads of the device that the host's page cache can serve
 * at once (preadNoWait, for io/cachedRead.ts): a read-modify-write's edge
 * block or a cache miss of ours that the host still holds is then read on the
 * main thread instead of paying the threadpool's two thread wake-ups.
 *
 * Built by scripts/build-native.sh with the C compiler and node's own
 * headers (no node-gyp, no download); N-API, so any node >= 20 loads it.
 */
#define _GNU_SOURCE /* preadv2, RWF_NOWAIT */
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int closed;
} watch_t;

#define CHECK(env, call)                                                      \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      napi_throw_error((env), NULL, "fusepoll: " #call " failed");            \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

/* The arguments of a call whose first argument is a descriptor. */
static napi_status fd_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv, int32_t *fd) {
  size_t argc = count;
  napi_status status = napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (status == napi_ok) status = napi_get_value_int32(env, argv[0], fd);
  return status;
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  watch_t *w = handle->data;
  if (w->closed) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, result;
  napi_get_reference_value(w->env, w->callback, &cb);
  napi_get_global(w->env, &recv);
  napi_create_int32(w->env, status, &arg);
  /* make_callback, not call_function: it runs the microtasks and nextTicks the callback queued, as any
     libuv callback into JS does. An exception thrown by the callback becomes an uncaught exception. */
  napi_make_callback(w->env, w->async, recv, cb, 1, &arg, &result);
  napi_close_handle_scope(w->env, scope);
}

static void on_close(uv_handle_t *handle) { free(handle->data); }

/* watch(fd, callback(status)) -> handle: callback runs on the main thread whenever fd is readable
   (status < 0: a libuv error code). Level-triggered: it runs again while data is left unread. */
static napi_value watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  CHECK(env, fd_args(env, info, 2, argv, &fd));
  watch_t *w = calloc(1, sizeof *w);
  if (!w) {
    napi_throw_error(env, "ENOMEM", "fusepoll: out of memory");
    return NULL;
  }
  w->env = env;
  w->poll.data = w;
  struct uv_loop_s *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "o2fuse:fusepoll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok) {
    free(w);
    napi_throw_error(env, NULL, "fusepoll: cannot set up the watch");
    return NULL;
  }
  int r = uv_poll_init(loop, &w->poll, fd);
  int initialized = r == 0;
  if (initialized) r = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (r != 0) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    if (initialized) uv_close((uv_handle_t *)&w->poll, on_close); /* frees w */
    else free(w);
    napi_throw_error(env, uv_err_name(r), uv_strerror(r));
    return NULL;
  }
  napi_value handle;
  CHECK(env, napi_create_external(env, w, NULL, NULL, &handle));
  return handle;
}

/* unwatch(handle): stops the watch; the callback is not called again. Idempotent. */
static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  watch_t *w;
  CHECK(env, napi_get_value_external(env, argv[0], (void **)&w));
  if (w->closed) return NULL;
  w->closed = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->async);
  uv_close((uv_handle_t *)&w->poll, on_close);
  return NULL;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A short pause between polls of an empty queue: fewer system calls, and the other hyperthread runs. */
static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  for (int i = 0; i < 16; i++) __builtin_ia32_pause();
#elif defined(__aarch64__)
  for (int i = 0; i < 16; i++) __asm__ volatile("yield");
#endif
}

/* read(fd, buffer) -> bytes read, or -errno; with spin, an empty queue (EAGAIN) is read again until the
   budget (third argument, ns) has passed. */
static napi_value read_call(napi_env env, napi_callback_info info, int spin) {
  napi_value argv[3];
  int32_t fd;
  CHECK(env, fd_args(env, info, spin ? 3 : 2, argv, &fd));
  void *data;
  size_t len;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  int64_t until = 0;
  if (spin) {
    CHECK(env, napi_get_value_int64(env, argv[2], &until));
    until += now_ns();
  }
  ssize_t n;
  int err;
  for (;;) {
    n = read(fd, data, len);
    err = n < 0 ? errno : 0;
    if (!spin || err != EAGAIN || now_ns() >= until) break;
    relax();
  }
  napi_value out;
  CHECK(env, napi_create_int64(env, n < 0 ? -err : n, &out));
  return out;
}

/* readInto(fd, buffer) -> bytes read, or -errno (-EAGAIN: nothing queued). Never throws for an errno:
   an empty queue is the normal end of every batch, and a thrown error costs a stack capture. */
static napi_value read_into(napi_env env, napi_callback_info info) { return read_call(env, info, 0); }

/* spinRead(fd, buffer, budgetNs) -> bytes read, or -errno: like readInto, but while the queue is empty it keeps
   reading for up to budgetNs before answering -EAGAIN. The main thread stays on its CPU meanwhile: a request
   that comes within the budget is read without the thread going to sleep and being woken again, which on a
   virtual machine (an inter-processor interrupt to a halted virtual CPU) costs tens of microseconds. */
static napi_value spin_read(napi_env env, napi_callback_info info) { return read_call(env, info, 1); }

/* setNonblocking(fd) -> 0 or -errno */
static napi_value set_nonblocking(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  CHECK(env, fd_args(env, info, 1, argv, &fd));
  int flags = fcntl(fd, F_GETFL);
  int r = flags < 0 ? -errno : fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
  napi_value out;
  CHECK(env, napi_create_int32(env, r, &out));
  return out;
}

/* preadNoWait(fd, buffer, offset, length, position) -> bytes read, or -errno: pread(2) of `length` bytes into
   buffer[offset..] with RWF_NOWAIT, which answers -EAGAIN instead of waiting for the device when the data is
   not all in the page cache (a short count when only its start is); -EOPNOTSUPP where the file does not
   support that. Never throws for an errno. */
static napi_value pread_nowait(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  CHECK(env, fd_args(env, info, 5, argv, &fd));
  void *data;
  size_t len;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  int64_t off, count, pos;
  CHECK(env, napi_get_value_int64(env, argv[2], &off));
  CHECK(env, napi_get_value_int64(env, argv[3], &count));
  CHECK(env, napi_get_value_int64(env, argv[4], &pos));
  if (off < 0 || count < 0 || pos < 0 || (uint64_t)off + (uint64_t)count > len) {
    napi_throw_range_error(env, NULL, "fusepoll: preadNoWait range outside the buffer");
    return NULL;
  }
  struct iovec iov = {(char *)data + off, (size_t)count};
  ssize_t n;
  do n = preadv2(fd, &iov, 1, (off_t)pos, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  napi_value out;
  CHECK(env, napi_create_int64(env, n < 0 ? -errno : n, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"watch", NULL, watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readInto", NULL, read_into, NULL, NULL, NULL, napi_enumerable, NULL},
    {"spinRead", NULL, spin_read, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setNonblocking", NULL, set_nonblocking, NULL, NULL, NULL, napi_enumerable, NULL},
    {"preadNoWait", NULL, pread_nowait, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(fusepoll, init)
