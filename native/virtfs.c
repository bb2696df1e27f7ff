/*
 * virtfs_native: the system-call layer of the local backend.
 *
 * Node's fs has no *at calls, O_PATH, xattrs, mknod, getdents cookies or OFD
 * locks; this addon supplies them and nothing more. Each exported function is
 * one (or a few) system calls; all policy (root boundary, permission mapping,
 * 9P semantics) lives in TypeScript (src/backend/local/sys.ts and callers).
 *
 * Every call that touches the disk runs on the libuv thread pool and returns a
 * Promise. One generic mechanism does the async plumbing: a JS entry point
 * parses its arguments into a `job`, names an `exec` function (thread pool,
 * no N-API allowed there) and a `done` function (JS thread, builds the
 * resolution value), and hands it to job_start().
 *
 * Objects reached through an O_PATH fd are acted on via the /proc/self/fd/N
 * magic link (as QEMU and crosvm do): the link resolves to the very object the
 * fd refers to, even a symlink, and is never followed further. This lets us
 * chmod/utime/xattr/link/truncate an object without opening it, which is the
 * only option for symlinks, fifos, devices and files we may not open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* System calls newer than some C libraries' headers (from 424 on, one number on every architecture but alpha). */
#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

#define NSTAT 23   /* length of the stat vector, see fill_stat() */
#define NSTATFS 9  /* length of the statfs vector, see do_fstatfs() */

typedef struct job job;
struct job {
  napi_async_work work;
  napi_deferred deferred;
  const char *op;                       /* syscall named in error messages */
  void (*exec)(job *);                  /* thread pool: do the syscall(s), set err */
  napi_value (*done)(napi_env, job *);  /* JS thread: resolution value; NULL fn = undefined */
  int err;                              /* positive errno, 0 on success */

  /* inputs */
  int fd, fd2, flags;
  uint32_t mode, uid, gid;
  int64_t a, b, c, d;                   /* 64-bit arguments */
  char *name, *name2;                   /* owned, NUL-terminated */
  char *names;                          /* walk: owned, packed NUL-terminated names */
  uint32_t nnames;
  int *known;                           /* walk: per step, the caller's fd of the object last found there, or -1 */
  void *buf;                            /* borrowed from JS; bufref keeps it alive */
  size_t len;
  napi_ref bufref;
  struct iovec *iov;                    /* pwritev: owned array of views into the buffers bufref holds */
  int iovcnt;

  /* outputs */
  int64_t ret;
  int *fds;                             /* fds this job opened: closed if never delivered */
  uint32_t nfds;
  uint64_t *stats;                      /* nfds * NSTAT */
  char *out;                            /* owned result bytes */
  size_t outlen;
  struct flock fl;

  /* options shared by several calls */
  char *meta;                           /* stat: also read PREFIX{uid,gid,mode,rdev} xattrs */
  char *meta_dir, *meta_root;           /* ...or the text files DIR/<meta_dir>/NAME, ROOT/<meta_root> */
  int meta_at;                          /* fstat: the directory holding the metadata (-1: none) */
  bool as_cred;                         /* create as cuid/cgid (per-thread fsuid/fsgid) */
  bool requeue;                         /* run on the JS thread, it found it must go to the pool */
  uint64_t lookup_dev;                  /* a lookup on the JS thread stays on this filesystem (dev + 1) */
  bool confined;                        /* ...and without any capability, as an ordinary process */
  bool resizes;                         /* a truncation running in the pool, counted in `resizing` */
  uint32_t cuid, cgid;
};

/* ---------- errors ---------- */

/* Error whose .errno is the positive errno and .code its symbolic name. It has no stack trace:
 * a failed call is an answer for the guest (ENODATA, ENOENT), and capturing the JS stack would
 * cost more than the call. */
static napi_value errno_error(napi_env env, const char *op, int err) {
  const char *name = strerrorname_np(err), *desc = strerrordesc_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", op, desc ? desc : "Unknown error");
  napi_value code, text, e, num, sys, global, ctor, limit = NULL, zero;
  bool quiet = napi_get_global(env, &global) == napi_ok && napi_get_named_property(env, global, "Error", &ctor) == napi_ok &&
               napi_get_named_property(env, ctor, "stackTraceLimit", &limit) == napi_ok && napi_create_int32(env, 0, &zero) == napi_ok &&
               napi_set_named_property(env, ctor, "stackTraceLimit", zero) == napi_ok;
  napi_status made = napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  if (made == napi_ok) made = napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  if (made == napi_ok) made = napi_create_error(env, code, text, &e);
  if (quiet) napi_set_named_property(env, ctor, "stackTraceLimit", limit);
  if (made != napi_ok ||
      napi_create_int32(env, err, &num) != napi_ok ||
      napi_create_string_utf8(env, op, NAPI_AUTO_LENGTH, &sys) != napi_ok ||
      napi_set_named_property(env, e, "errno", num) != napi_ok ||
      napi_set_named_property(env, e, "syscall", sys) != napi_ok)
    return NULL;
  return e;
}

/* The pending exception if an N-API call failed, else a generic Error. */
static napi_value napi_failure(napi_env env) {
  napi_value e = NULL, msg;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &e) == napi_ok)
    return e;
  if (napi_create_string_utf8(env, "virtfs_native: N-API call failed", NAPI_AUTO_LENGTH, &msg) == napi_ok)
    napi_create_error(env, NULL, msg, &e);
  return e;
}

/* ---------- descriptors on local filesystems ---------- */

/* A thread-pool hop costs 10-20 us, a metadata system call on a local filesystem about 1 us. So
 * calls on descriptors marked local (markLocal: which filesystems count is the server's policy)
 * run on the JS thread and settle at once; see runs_inline for which. A descriptor the addon opens
 * from a local one is local too if it is on the same filesystem (dev). Marks live on the JS
 * thread only: fd -> dev + 1, 0 for not local. */
static _Thread_local struct local_mark { uint64_t dev1, ino; } *local_marks;
static _Thread_local size_t local_cap;

static uint64_t local_of(int fd) { return fd >= 0 && (size_t)fd < local_cap ? local_marks[fd].dev1 : 0; }

/* The inode number of a local fd's object, as stated when the addon handed it out (0: unknown). */
static uint64_t local_ino_of(int fd) { return local_of(fd) ? local_marks[fd].ino : 0; }

static void set_local(int fd, uint64_t dev1, uint64_t ino) {
  if (fd < 0) return;
  if ((size_t)fd >= local_cap) {
    if (!dev1) return;
    size_t cap = local_cap ? local_cap : 1024;
    while (cap <= (size_t)fd) cap *= 2;
    struct local_mark *grown = realloc(local_marks, cap * sizeof *grown);
    if (!grown) return; /* left unmarked: its calls hop, as on any filesystem */
    memset(grown + local_cap, 0, (cap - local_cap) * sizeof *grown);
    local_marks = grown;
    local_cap = cap;
  }
  local_marks[fd] = (struct local_mark){dev1, dev1 ? ino : 0};
}

static bool runs_inline(job *j);
static bool resizes(job *j);
/* Truncations running in the pool: one holds its file's lock while it frees blocks, and a write
 * to that file would wait for it, so while any runs no write is made on the JS thread. */
static unsigned resizing;
static void mark_delivered(job *j);

/* ---------- the generic async job ---------- */

/* Set by runConfined() around a synchronous stretch of calls on the JS thread: every job created
 * meanwhile runs as that user, without capabilities (exec_as). JS is single-threaded, so no job
 * can see another's. */
static bool ambient_set;
static uint32_t ambient_uid, ambient_gid;

static job *job_new(const char *op, void (*exec)(job *), napi_value (*done)(napi_env, job *)) {
  job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->op = op;
  j->exec = exec;
  j->done = done;
  j->fd = j->fd2 = j->meta_at = -1;
  if (ambient_set) {
    j->as_cred = j->confined = true;
    j->cuid = ambient_uid;
    j->cgid = ambient_gid;
  }
  return j;
}

static void job_free(napi_env env, job *j) {
  if (!j) return;
  if (j->bufref) napi_delete_reference(env, j->bufref);
  if (j->work) napi_delete_async_work(env, j->work);
  free(j->name);
  free(j->name2);
  free(j->names);
  free(j->iov);
  free(j->known);
  free(j->fds);
  free(j->stats);
  free(j->out);
  free(j->meta);
  free(j->meta_dir);
  free(j->meta_root);
  free(j);
}

/* Argument parsing failed (a TypeError/RangeError is pending): drop the job. */
static napi_value job_abort(napi_env env, job *j) {
  job_free(env, j);
  return NULL;
}

/* The server's own supplementary groups, read once before any thread switches them. */
static gid_t server_groups[256];
static int server_ngroups = -1;

/* Create as another user: fsuid/fsgid and the groups are per thread at the system-call level
 * (glibc's setgroups() would change every thread, so the raw call is used), and the thread is put
 * back before it runs the next job. An unprivileged server cannot switch, and its objects then
 * belong to itself, as any process's do. Leaving fsuid 0 drops the filesystem capabilities, so
 * the host's own permission checks apply to the guest's user too. */
static void exec_as(job *j) {
  uid_t old_uid = (uid_t)setfsuid((uid_t)-1);
  gid_t old_gid = (gid_t)setfsgid((gid_t)-1);
  gid_t g = (gid_t)j->cgid;
  bool groups = server_ngroups >= 0 && syscall(SYS_setgroups, 1, &g) == 0;
  setfsgid((gid_t)j->cgid);
  setfsuid((uid_t)j->cuid);
  /* A confined job also loses the capabilities fsuid leaves (CAP_SYS_ADMIN for trusted.*,
   * CAP_SETFCAP for security.capability, ...): per thread, effective set only, restored after. */
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct caps[2] = {{0}}, none[2];
  bool dropped = false, privileged = false;
  if (j->confined) {
    privileged = syscall(SYS_capget, &hdr, caps) != 0 || caps[0].effective || caps[1].effective;
    if (privileged) {
      memcpy(none, caps, sizeof none);
      none[0].effective = none[1].effective = 0;
      dropped = syscall(SYS_capset, &hdr, none) == 0;
    }
  }
  if (privileged && !dropped) j->err = EPERM; /* never run a confined job with privilege */
  else j->exec(j);
  if (dropped) syscall(SYS_capset, &hdr, caps);
  setfsuid(old_uid);
  setfsgid(old_gid);
  if (groups) syscall(SYS_setgroups, server_ngroups, server_groups);
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  job *j = data;
  if (j->as_cred) exec_as(j);
  else j->exec(j);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job *j = data;
  napi_value v = NULL;
  if (j->resizes) resizing--;
  if (status != napi_ok) {
    v = napi_failure(env);
  } else if (j->err) {
    v = errno_error(env, j->op, j->err);
    if (!v) v = napi_failure(env);
  } else if (j->done) {
    v = j->done(env, j);
    if (v) {
      mark_delivered(j);
      j->nfds = 0; /* delivered: the caller owns the fds now */
      napi_resolve_deferred(env, j->deferred, v);
      goto out;
    }
    v = napi_failure(env);
  } else {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, j->deferred, v);
    goto out;
  }
  napi_reject_deferred(env, j->deferred, v);
out:
  for (uint32_t i = 0; i < j->nfds; i++)
    if (j->fds[i] >= 0) close(j->fds[i]);
  job_free(env, j);
}

/* Set by js_now around a call made through one of the *Now names (see now_fns). */
static bool now_requested;

/* The *Now form of a call: its value, or its error thrown, when it runs inline (runs_inline) and
 * completes there; undefined, having done nothing, when it would have to hop to the pool. The
 * server answers such a request before returning to the event loop, without the promise's turn
 * (a round trip's worth of cost when requests come one at a time). */
static napi_value job_now(napi_env env, job *j) {
  napi_value v = NULL;
  if (!j->err && !runs_inline(j)) {
    job_free(env, j);
    napi_get_undefined(env, &v);
    return v;
  }
  if (!j->err) job_execute(env, j);
  if (j->requeue) {
    napi_get_undefined(env, &v);
  } else if (j->err) {
    napi_value e = errno_error(env, j->op, j->err);
    napi_throw(env, e ? e : napi_failure(env));
  } else if (!j->done) {
    napi_get_undefined(env, &v);
  } else if ((v = j->done(env, j))) {
    mark_delivered(j);
    j->nfds = 0; /* delivered: the caller owns the fds now */
  } else {
    napi_throw(env, napi_failure(env));
  }
  for (uint32_t i = 0; i < j->nfds; i++)
    if (j->fds[i] >= 0) close(j->fds[i]);
  job_free(env, j);
  return v;
}

/* Create the promise and queue the job; a job that already failed argument
 * validation with an errno (e.g. a name containing NUL) is rejected at once. */
static napi_value job_start(napi_env env, job *j) {
  napi_value promise, res;
  if (now_requested) {
    now_requested = false;
    return job_now(env, j);
  }
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) return job_abort(env, j);
  if (j->err) {
    napi_value e = errno_error(env, j->op, j->err);
    napi_reject_deferred(env, j->deferred, e ? e : napi_failure(env));
    job_free(env, j);
    return promise;
  }
  if (runs_inline(j)) {
    job_execute(env, j);
    if (!j->requeue) {
      job_complete(env, napi_ok, j);
      return promise;
    }
    j->requeue = false;
    j->err = 0;
    j->ret = 0;
    j->lookup_dev = 0;
  }
  if (napi_create_string_utf8(env, j->op, NAPI_AUTO_LENGTH, &res) != napi_ok ||
      napi_create_async_work(env, NULL, res, job_execute, job_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    napi_reject_deferred(env, j->deferred, napi_failure(env));
    job_free(env, j);
  } else if (resizes(j)) {
    j->resizes = true;
    resizing++;
  }
  return promise;
}

/* ---------- argument parsing (false = exception pending) ---------- */

static bool type_error(napi_env env, const char *what) {
  napi_throw_type_error(env, NULL, what);
  return false;
}

static bool range_error(napi_env env, const char *what) {
  napi_throw_range_error(env, NULL, what);
  return false;
}

static bool arg_i32(napi_env env, napi_value v, int *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return type_error(env, "expected a number");
  int32_t x;
  napi_get_value_int32(env, v, &x);
  *out = x;
  return true;
}

/* uint32 by bit pattern, so -1 and 0xFFFFFFFF are the same id. */
static bool arg_u32(napi_env env, napi_value v, uint32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return type_error(env, "expected a number");
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static bool arg_bool(napi_env env, napi_value v, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return type_error(env, "expected a boolean");
  return true;
}

/* A bigint in [-2^63, 2^64), returned as its 64-bit two's-complement pattern,
 * so callers may pass either an unsigned 9P value or a signed off_t. */
static bool arg_b64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_bigint) return type_error(env, "expected a bigint");
  uint64_t u;
  bool lossless;
  napi_get_value_bigint_uint64(env, v, &u, &lossless);
  if (lossless) {
    *out = (int64_t)u;
    return true;
  }
  napi_get_value_bigint_int64(env, v, out, &lossless);
  return lossless || range_error(env, "bigint out of 64-bit range");
}

static bool arg_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  napi_typedarray_type t;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) != napi_ok || t != napi_uint8_array)
    return type_error(env, "expected a Uint8Array");
  return true;
}

/* Copy a name/path into an owned NUL-terminated string. A NUL inside or an
 * over-long name is not a type error: it fails the job with EINVAL or
 * ENAMETOOLONG, like the kernel would for a C caller. */
static bool arg_name(napi_env env, napi_value v, job *j, char **out) {
  void *data;
  size_t len;
  if (!arg_bytes(env, v, &data, &len)) return false;
  if (len && memchr(data, 0, len)) {
    if (!j->err) j->err = EINVAL;
    return true;
  }
  if (len >= PATH_MAX) {
    if (!j->err) j->err = ENAMETOOLONG;
    return true;
  }
  if (!(*out = malloc(len + 1))) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return false;
  }
  memcpy(*out, data, len);
  (*out)[len] = 0;
  return true;
}

/* A directory-entry name: one path component. The TypeScript layer refuses
 * '/' already; refusing it here too means no caller mistake can ever turn a
 * name into a multi-component path that follows symlinks mid-way. */
static bool arg_component(napi_env env, napi_value v, job *j, char **out) {
  if (!arg_name(env, v, j, out)) return false;
  if (*out && strchr(*out, '/') && !j->err) j->err = EINVAL;
  return true;
}

/* Borrow buf[off, off+len) for the duration of the job; the reference keeps
 * the buffer from being collected while the thread pool uses it. */
static bool arg_window(napi_env env, napi_value vbuf, napi_value voff, napi_value vlen, job *j) {
  void *data;
  size_t blen;
  double off, len;
  if (!arg_bytes(env, vbuf, &data, &blen)) return false;
  if (napi_get_value_double(env, voff, &off) != napi_ok || napi_get_value_double(env, vlen, &len) != napi_ok)
    return type_error(env, "expected a number");
  /* Bounds first, so the integrality test below only casts in-range values. */
  if (!(off >= 0 && len >= 0 && off + len <= (double)blen && off == (double)(size_t)off && len == (double)(size_t)len))
    return range_error(env, "offset/length outside the buffer");
  j->buf = (char *)data + (size_t)off;
  j->len = (size_t)len;
  return napi_create_reference(env, vbuf, 1, &j->bufref) == napi_ok;
}

/* Whole-buffer variant of arg_window. */
static bool arg_buffer(napi_env env, napi_value vbuf, job *j) {
  if (!arg_bytes(env, vbuf, &j->buf, &j->len)) return false;
  return napi_create_reference(env, vbuf, 1, &j->bufref) == napi_ok;
}

/* Optional: where a mapped model keeps its metadata, read with every stat: an xattr prefix
 * (fill_meta_xattr), or {dir, root}, the names of its metadata files (fill_meta_file). */
static bool arg_meta(napi_env env, napi_value v, job *j) {
  napi_valuetype t;
  bool is = false;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined || t == napi_null) return true;
  if (napi_is_typedarray(env, v, &is) != napi_ok) return false;
  if (is) return arg_name(env, v, j, &j->meta);
  napi_value dir, root;
  if (t != napi_object || napi_get_named_property(env, v, "dir", &dir) != napi_ok ||
      napi_get_named_property(env, v, "root", &root) != napi_ok)
    return type_error(env, "expected an xattr prefix or {dir, root}");
  return arg_component(env, dir, j, &j->meta_dir) && arg_component(env, root, j, &j->meta_root);
}

/* Optional uid, gid: create the object as that user (exec_as). */
static bool arg_cred(napi_env env, napi_value vu, napi_value vg, job *j) {
  napi_valuetype t;
  if (napi_typeof(env, vu, &t) != napi_ok) return false;
  if (t == napi_undefined) return true;
  if (!arg_u32(env, vu, &j->cuid) || !arg_u32(env, vg, &j->cgid)) return false;
  j->as_cred = true;
  return true;
}

/* Fetch exactly n arguments into argv (missing ones are undefined and will
 * fail their type check). */
#define ARGS(n)                                                            \
  napi_value argv[n];                                                      \
  size_t argc = n;                                                         \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)     \
    return NULL;

/* ---------- result builders (JS thread) ---------- */

/* Stat vectors are views into a shared slab, as Node cuts small Buffers from a pool: a buffer of
 * their own (184 bytes, too big to live in V8's heap) cost a malloc and external-memory
 * accounting each, about 0.7 us, several times the statx it holds. A slab is freed by the GC once
 * no view of it is left; they are small, so one kept view pins little. JS thread only. */
#define SLAB_BYTES 8192
typedef struct {
  napi_ref ref;
  uint8_t *data;
  size_t used;
} slab;

static void slab_free(napi_env env, void *data, void *hint) {
  (void)hint;
  slab *s = data;
  if (s->ref) napi_delete_reference(env, s->ref);
  free(s);
}

static napi_value u64_array(napi_env env, const uint64_t *src, size_t n) {
  napi_value ab = NULL, arr;
  size_t bytes = n * 8;
  slab *s = NULL;
  if (napi_get_instance_data(env, (void **)&s) != napi_ok) return NULL;
  if (!s) {
    if (!(s = calloc(1, sizeof *s)) || napi_set_instance_data(env, s, slab_free, NULL) != napi_ok) {
      free(s);
      return NULL;
    }
  }
  if (bytes > SLAB_BYTES) {
    void *data;
    if (napi_create_arraybuffer(env, bytes, &data, &ab) != napi_ok) return NULL;
    memcpy(data, src, bytes);
    return napi_create_typedarray(env, napi_biguint64_array, n, ab, 0, &arr) == napi_ok ? arr : NULL;
  }
  /* The current slab, if the view fits and the GC has not taken it (then ab stays NULL). */
  if (s->ref && s->used + bytes <= SLAB_BYTES && napi_get_reference_value(env, s->ref, &ab) != napi_ok) ab = NULL;
  if (!ab) {
    void *data;
    if (s->ref) napi_delete_reference(env, s->ref);
    s->ref = NULL;
    if (napi_create_arraybuffer(env, SLAB_BYTES, &data, &ab) != napi_ok || napi_create_reference(env, ab, 0, &s->ref) != napi_ok) return NULL;
    s->data = data;
    s->used = 0;
  }
  memcpy(s->data + s->used, src, bytes);
  if (napi_create_typedarray(env, napi_biguint64_array, n, ab, s->used, &arr) != napi_ok) return NULL;
  s->used += bytes;
  return arr;
}

static napi_value done_int(napi_env env, job *j) {
  napi_value v;
  return napi_create_int64(env, j->ret, &v) == napi_ok ? v : NULL;
}

static napi_value done_out(napi_env env, job *j) {
  napi_value v;
  return napi_create_buffer_copy(env, j->outlen, j->out, NULL, &v) == napi_ok ? v : NULL;
}

static napi_value done_fd_stat(napi_env env, job *j) {
  napi_value arr, fd, st;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_create_int32(env, j->fds[0], &fd) != napi_ok || !(st = u64_array(env, j->stats, NSTAT)) ||
      napi_set_element(env, arr, 0, fd) != napi_ok || napi_set_element(env, arr, 1, st) != napi_ok)
    return NULL;
  return arr;
}

static napi_value done_fd(napi_env env, job *j) {
  napi_value v;
  return napi_create_int32(env, j->fds[0], &v) == napi_ok ? v : NULL;
}

/* ---------- syscall helpers (thread pool) ---------- */

static void proc_path(char out[32], int fd) { snprintf(out, 32, "/proc/self/fd/%d", fd); }

static const char *const meta_field[4] = {"uid", "gid", "mode", "rdev"};

/* The mapped security models keep the guest's view of an object in xattrs (QEMU's format:
 * u32 LE uid, gid, mode; u64 LE rdev). Read them with the stat, in the same thread-pool hop:
 * s[18] has bit 0..3 set for each of uid, gid, mode, rdev found, their values in s[19..22].
 * Host symlinks are skipped: the magic link would lead through them. */
static void fill_meta_xattr(int fd, const char *prefix, uint64_t *s) {
  char p[32], name[64];
  proc_path(p, fd);
  for (int i = 0; i < 4; i++) {
    unsigned char v[8] = {0};
    snprintf(name, sizeof name, "%s%s", prefix, meta_field[i]);
    ssize_t n = getxattr(p, name, v, i == 3 ? 8 : 4);
    if (n <= 0) continue;
    uint64_t x = 0;
    for (int b = n - 1; b >= 0; b--) x = x << 8 | v[b];
    s[18] |= 1u << i;
    s[19 + i] = x;
  }
}

/* Open a regular file below dirfd for reading without following a symlink or opening a device
 * or fifo: O_PATH first, checked, then reopened through the magic link. -1 if none. */
static int open_plain_file(int dirfd, const char *name) {
  struct stat st;
  char p[32];
  int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), fd = -1;
  if (pfd < 0) return -1;
  if (fstat(pfd, &st) == 0 && S_ISREG(st.st_mode)) {
    proc_path(p, pfd);
    fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  }
  close(pfd);
  return fd;
}

/* QEMU's mapped-file model keeps the same fields as text ("virtfs.uid=N" lines, decimal, as
 * QEMU's %d prints them) in AT/DIR/NAME, or AT/ROOT for the export root (name NULL); read into
 * the same slots as fill_meta_xattr. Negative numbers are QEMU's int printing of 32-bit values.
 * Each component is opened relative to a directory fd with O_NOFOLLOW. */
static void fill_meta_file(int at, const char *dir, const char *root, const char *name, uint64_t *s) {
  int fd;
  if (name) {
    int mdir = openat(at, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mdir < 0) return;
    fd = open_plain_file(mdir, name);
    close(mdir);
  } else {
    fd = open_plain_file(at, root);
  }
  if (fd < 0) return;
  char buf[1024];
  ssize_t n;
  do n = pread(fd, buf, sizeof buf - 1, 0);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  for (char *line = buf, *next; line; line = next) {
    if ((next = strchr(line, '\n'))) *next++ = 0;
    if (strncmp(line, "virtfs.", 7)) continue;
    for (int i = 0; i < 4; i++) {
      size_t l = strlen(meta_field[i]);
      if (strncmp(line + 7, meta_field[i], l) || line[7 + l] != '=') continue;
      long long v = strtoll(line + 8 + l, NULL, 10);
      s[18] |= 1u << i;
      s[19 + i] = v < 0 ? (uint32_t)v : (uint64_t)v;
    }
  }
}

/* The statx of entry PATH of FD ("": FD itself; never followed) into the stat vector, without
 * the job's metadata (s[18..22] zero); see the layout in sys.ts. statx works on O_PATH fds and
 * gives btime. */
static int statx_into(job *j, int fd, const char *path, uint64_t *s) {
  struct statx x;
  /* On the JS thread a lookup must not wait on a network filesystem mounted inside the export:
   * its cached attributes say where it landed, and a step onto another filesystem goes to the
   * pool (before any metadata is read there). Local filesystems have nothing to sync. */
  int sync = j->lookup_dev ? AT_STATX_DONT_SYNC : AT_STATX_SYNC_AS_STAT;
  if (statx(fd, path, (*path ? 0 : AT_EMPTY_PATH) | AT_SYMLINK_NOFOLLOW | sync, STATX_BASIC_STATS | STATX_BTIME, &x) < 0)
    return errno;
  if (j->lookup_dev && makedev(x.stx_dev_major, x.stx_dev_minor) + 1 != j->lookup_dev) {
    j->requeue = true;
    return EXDEV;
  }
  s[0] = makedev(x.stx_dev_major, x.stx_dev_minor);
  s[1] = x.stx_ino;
  s[2] = x.stx_mode;
  s[3] = x.stx_nlink;
  s[4] = x.stx_uid;
  s[5] = x.stx_gid;
  s[6] = makedev(x.stx_rdev_major, x.stx_rdev_minor);
  s[7] = x.stx_size;
  s[8] = x.stx_blksize;
  s[9] = x.stx_blocks;
  s[10] = (uint64_t)x.stx_atime.tv_sec, s[11] = x.stx_atime.tv_nsec;
  s[12] = (uint64_t)x.stx_mtime.tv_sec, s[13] = x.stx_mtime.tv_nsec;
  s[14] = (uint64_t)x.stx_ctime.tv_sec, s[15] = x.stx_ctime.tv_nsec;
  bool bt = x.stx_mask & STATX_BTIME;
  s[16] = bt ? (uint64_t)x.stx_btime.tv_sec : 0, s[17] = bt ? x.stx_btime.tv_nsec : 0;
  s[18] = s[19] = s[20] = s[21] = s[22] = 0;
  return 0;
}

/* The stat of FD with the job's metadata of the object read along: xattrs of fd itself, or the
 * metadata file of entry NAME of directory AT (the root's own when NAME is NULL; none for "." and
 * "..", whose names say nothing). */
static int fill_stat(job *j, int fd, uint64_t *s, int at, const char *name) {
  int err = statx_into(j, fd, "", s);
  if (err) return err;
  if (j->meta && !S_ISLNK(s[2])) fill_meta_xattr(fd, j->meta, s);
  if (j->meta_dir && at >= 0 && !(name && (!strcmp(name, ".") || !strcmp(name, ".."))))
    fill_meta_file(at, j->meta_dir, j->meta_root, name, s);
  /* bit 4: a directory holding a metadata directory (which counts in its link count) */
  struct stat md;
  if (j->meta_dir && S_ISDIR(s[2]) && fstatat(fd, j->meta_dir, &md, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(md.st_mode))
    s[18] |= 16;
  return 0;
}

/* Room for n opened fds and their stats in the job's outputs. */
static int reserve_fds(job *j, uint32_t n) {
  if (j->fds) return 0; /* a lookup resumed in the pool keeps what it opened */
  j->fds = malloc((n ? n : 1) * sizeof *j->fds);
  j->stats = malloc((n ? n : 1) * NSTAT * sizeof *j->stats);
  return j->fds && j->stats ? 0 : ENOMEM;
}

/* Record a freshly opened fd (and stat it if stats were reserved, with the metadata found at
 * AT/NAME, see fill_stat). */
static int keep_fd(job *j, int fd, int at, const char *name) {
  int err = j->stats ? fill_stat(j, fd, j->stats + j->nfds * NSTAT, at, name) : 0;
  if (err) {
    close(fd);
    return err;
  }
  j->fds[j->nfds++] = fd;
  return 0;
}

#define RET(expr) (j->err = (expr) < 0 ? errno : 0)

/* ---------- opening and walking ---------- */

static void do_open_path(job *j) {
  if ((j->err = reserve_fds(j, 1))) return;
  int fd = openat(j->fd, j->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  j->err = fd < 0 ? errno : keep_fd(j, fd, j->fd, j->name);
}

static napi_value js_open_path(napi_env env, napi_callback_info info) {
  ARGS(3);
  job *j = job_new("openat", do_open_path, done_fd_stat);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_component(env, argv[1], j, &j->name) || !arg_meta(env, argv[2], j))
    return job_abort(env, j);
  return job_start(env, j);
}

/* Whether entry NAME of DIR is still the object the caller holds as KNOWN: then the step is
 * KNOWN itself (reported as fd -1), stat and metadata read through it, and nothing is opened or
 * closed. KNOWN pins its inode, so equal (dev, ino) is the same object. */
static bool step_is_known(job *j, int dir, const char *name, int known, uint64_t *s) {
  /* With no metadata to read through KNOWN, one statx of the entry does: it is KNOWN's own stat
   * when it has KNOWN's (dev, ino), which the addon noted when it handed KNOWN out. */
  uint64_t ino = local_ino_of(known);
  if (ino && !j->meta && !j->meta_dir)
    return statx_into(j, dir, name, s) == 0 && s[0] + 1 == local_of(known) && s[1] == ino;
  struct statx x;
  int sync = j->lookup_dev ? AT_STATX_DONT_SYNC : AT_STATX_SYNC_AS_STAT;
  if (statx(dir, name, AT_SYMLINK_NOFOLLOW | sync, STATX_INO, &x) < 0) return false;
  if (fill_stat(j, known, s, dir, name)) return false;
  return s[0] == makedev(x.stx_dev_major, x.stx_dev_minor) && s[1] == x.stx_ino;
}

static int walk_dir(job *j, uint32_t i) {
  if (i == 0) return j->fd;
  return j->fds[i - 1] >= 0 ? j->fds[i - 1] : j->known[i - 1];
}

/* One call (one thread-pool hop at most) for a whole Twalk. Failure stops the walk and is
 * reported in the result (not as a rejection): the prefix is still useful. */
static void do_walk(job *j) {
  if ((j->err = reserve_fds(j, j->nnames))) return;
  const char *name = j->names;
  for (uint32_t i = 0; i < j->nfds; i++) name += strlen(name) + 1; /* resumed in the pool */
  for (uint32_t i = j->nfds; i < j->nnames; i++, name += strlen(name) + 1) {
    int dir = walk_dir(j, i);
    /* The kernel already says ENOTDIR for openat() relative to a non-directory
     * (symlinks included, as O_PATH fds); checking our own stat makes that
     * independent of filesystem quirks and saves the syscall. */
    if (i && !S_ISDIR(j->stats[(i - 1) * NSTAT + 2])) {
      j->ret = ENOTDIR;
      return;
    }
    if (j->known && j->known[i] >= 0) {
      if (step_is_known(j, dir, name, j->known[i], j->stats + j->nfds * NSTAT)) {
        j->fds[j->nfds++] = -1;
        continue;
      }
      if (j->requeue) return;
    }
    int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int err = fd < 0 ? errno : keep_fd(j, fd, dir, name);
    if (err) {
      if (!j->requeue) j->ret = err;
      return;
    }
  }
}

/* [fds, stats, errno], which sys.ts names: an object's named properties, set from here, each made
 * its key from a C string and moved the object to a new map, and cost a walk more than its openat. */
static napi_value done_walk(napi_env env, job *j) {
  napi_value res, fds, stats, v;
  if (napi_create_array_with_length(env, 3, &res) != napi_ok || napi_create_array_with_length(env, j->nfds, &fds) != napi_ok ||
      napi_create_array_with_length(env, j->nfds, &stats) != napi_ok)
    return NULL;
  for (uint32_t i = 0; i < j->nfds; i++) {
    if (napi_create_int32(env, j->fds[i], &v) != napi_ok || napi_set_element(env, fds, i, v) != napi_ok ||
        !(v = u64_array(env, j->stats + i * NSTAT, NSTAT)) || napi_set_element(env, stats, i, v) != napi_ok)
      return NULL;
  }
  if (napi_set_element(env, res, 0, fds) != napi_ok || napi_set_element(env, res, 1, stats) != napi_ok ||
      napi_create_int32(env, (int32_t)j->ret, &v) != napi_ok || napi_set_element(env, res, 2, v) != napi_ok)
    return NULL;
  return res;
}

static napi_value js_walk(napi_env env, napi_callback_info info) {
  ARGS(4);
  job *j = job_new("openat", do_walk, done_walk);
  bool is = false;
  uint32_t n = 0;
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_meta(env, argv[2], j)) return job_abort(env, j);
  if (napi_is_array(env, argv[1], &is) != napi_ok || !is || napi_get_array_length(env, argv[1], &n) != napi_ok) {
    type_error(env, "expected an array of Uint8Array");
    return job_abort(env, j);
  }
  /* Pack the names; an invalid one (NUL, too long) rejects the whole walk,
   * as QEMU rejects a Twalk with any illegal name before walking. */
  size_t used = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    char *name = NULL;
    if (napi_get_element(env, argv[1], i, &e) != napi_ok || !arg_component(env, e, j, &name)) return job_abort(env, j);
    if (j->err) { /* keep type-checking the rest */
      free(name);
      continue;
    }
    size_t l = strlen(name) + 1;
    char *grown = realloc(j->names, used + l);
    if (!grown) {
      free(name);
      napi_throw_error(env, "ENOMEM", "out of memory");
      return job_abort(env, j);
    }
    memcpy(grown + used, name, l);
    free(name);
    j->names = grown;
    used += l;
  }
  j->nnames = n;
  napi_valuetype t;
  if (napi_typeof(env, argv[3], &t) != napi_ok) return job_abort(env, j);
  if (t != napi_undefined) {
    napi_typedarray_type tt;
    size_t len;
    void *data;
    if (napi_get_typedarray_info(env, argv[3], &tt, &len, &data, NULL, NULL) != napi_ok || tt != napi_int32_array || len != n) {
      type_error(env, "expected an Int32Array with one fd (or -1) per name");
      return job_abort(env, j);
    }
    if (!(j->known = malloc((n ? n : 1) * sizeof *j->known))) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return job_abort(env, j);
    }
    memcpy(j->known, data, n * sizeof *j->known);
  }
  return job_start(env, j);
}

static void do_open_root(job *j) {
  if ((j->err = reserve_fds(j, 1))) return;
  int fd = open(j->name, O_PATH | O_DIRECTORY | O_CLOEXEC);
  j->err = fd < 0 ? errno : keep_fd(j, fd, fd, NULL);
}

static napi_value js_open_root(napi_env env, napi_callback_info info) {
  ARGS(2);
  job *j = job_new("open", do_open_root, done_fd_stat);
  if (!j || !arg_name(env, argv[0], j, &j->name) || !arg_meta(env, argv[1], j)) return job_abort(env, j);
  return job_start(env, j);
}

static void do_fstat(job *j) {
  if (!(j->stats = malloc(NSTAT * sizeof *j->stats))) j->err = ENOMEM;
  else j->err = fill_stat(j, j->fd, j->stats, j->meta_at, j->name);
}

static napi_value done_stat(napi_env env, job *j) { return u64_array(env, j->stats, NSTAT); }

/* fstat(fd, meta, at?, name?): by-name metadata is read from AT (entry NAME, or the root's own). */
static napi_value js_fstat(napi_env env, napi_callback_info info) {
  ARGS(4);
  job *j = job_new("statx", do_fstat, done_stat);
  napi_valuetype t1, t2;
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_meta(env, argv[1], j) || napi_typeof(env, argv[2], &t1) != napi_ok ||
      napi_typeof(env, argv[3], &t2) != napi_ok || (t1 != napi_undefined && !arg_i32(env, argv[2], &j->meta_at)) ||
      (t2 != napi_undefined && !arg_component(env, argv[3], j, &j->name)))
    return job_abort(env, j);
  return job_start(env, j);
}

/* Turn an O_PATH fd into a real open file description, or an open file into an O_PATH one. */
static void do_reopen(job *j) {
  char p[32];
  proc_path(p, j->fd);
  if ((j->err = reserve_fds(j, 1))) return;
  free(j->stats); /* the same object as fd: nothing to learn from a stat (see mark_delivered) */
  j->stats = NULL;
  int fd = -1;
  /* An O_PATH descriptor of the object itself without walking /proc (Linux 5.2). */
  if ((j->flags & ~O_NOFOLLOW) == O_PATH) fd = (int)syscall(__NR_open_tree, j->fd, "", AT_EMPTY_PATH | O_CLOEXEC);
  /* O_NOFOLLOW would refuse the magic link itself (ELOOP); O_CREAT/O_EXCL are
   * meaningless for an object that exists. */
  if (fd < 0) fd = open(p, (j->flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC);
  j->err = fd < 0 ? errno : keep_fd(j, fd, -1, NULL);
}

static napi_value js_reopen(napi_env env, napi_callback_info info) {
  ARGS(2);
  job *j = job_new("open", do_reopen, done_fd);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_i32(env, argv[1], &j->flags)) return job_abort(env, j);
  return job_start(env, j);
}

static void do_openat(job *j) {
  if ((j->err = reserve_fds(j, 1))) return;
  int fd = openat(j->fd, j->name, j->flags | O_CLOEXEC | O_NOFOLLOW, (mode_t)j->mode);
  j->err = fd < 0 ? errno : keep_fd(j, fd, -1, NULL);
}

static napi_value js_openat(napi_env env, napi_callback_info info) {
  ARGS(6);
  job *j = job_new("openat", do_openat, done_fd);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_component(env, argv[1], j, &j->name) ||
      !arg_i32(env, argv[2], &j->flags) || !arg_u32(env, argv[3], &j->mode) || !arg_cred(env, argv[4], argv[5], j))
    return job_abort(env, j);
  return job_start(env, j);
}

/* Close is never retried on EINTR: on Linux the fd is gone either way. */
static void do_close(job *j) { RET(close(j->fd)); }

static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  job *j = job_new("close", do_close, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd)) return job_abort(env, j);
  int fd = j->fd;
  napi_value promise = job_start(env, j);
  set_local(fd, 0, 0);
  return promise;
}

static napi_value js_close_sync(napi_env env, napi_callback_info info) {
  ARGS(1);
  int fd;
  if (!arg_i32(env, argv[0], &fd)) return NULL;
  set_local(fd, 0, 0);
  if (close(fd) < 0) {
    napi_value e = errno_error(env, "close", errno);
    if (e) napi_throw(env, e);
  }
  return NULL;
}

/* ---------- data ---------- */

static void do_pread(job *j) {
  ssize_t n;
  do n = pread(j->fd, j->buf, j->len, (off_t)j->a);
  while (n < 0 && errno == EINTR);
  j->err = n < 0 ? errno : 0;
  j->ret = n;
}

/* On the JS thread: only what the page cache holds (RWF_NOWAIT), else the read goes to the pool;
 * so does a short read that is not at the end of the file. */
static void do_pread_cached(job *j) {
  struct iovec v = {j->buf, j->len};
  struct stat st;
  ssize_t n;
  do n = preadv2(j->fd, &v, 1, (off_t)j->a, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EOPNOTSUPP) j->requeue = true;
    else j->err = errno;
  } else if ((size_t)n < j->len && n > 0 && !(fstat(j->fd, &st) == 0 && (off_t)j->a + n >= st.st_size)) {
    j->requeue = true;
  }
  j->ret = n;
  if (j->requeue) j->exec = do_pread;
}

static void do_pwrite(job *j) {
  ssize_t n;
  do n = pwrite(j->fd, j->buf, j->len, (off_t)j->a);
  while (n < 0 && errno == EINTR);
  j->err = n < 0 ? errno : 0;
  j->ret = n;
}

static napi_value rw(napi_env env, napi_callback_info info, const char *op, void (*exec)(job *)) {
  ARGS(7);
  job *j = job_new(op, exec, done_int);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_window(env, argv[1], argv[2], argv[3], j) ||
      !arg_b64(env, argv[4], &j->a) || !arg_cred(env, argv[5], argv[6], j))
    return job_abort(env, j);
  return job_start(env, j);
}

/* A Twrite's payload as it arrived, in the pieces the transport received it in: written as one
 * pwritev rather than joined first (a copy of every byte of a 1 MiB write). */
static void do_pwritev(job *j) {
  ssize_t n;
  do n = pwritev(j->fd, j->iov, j->iovcnt, (off_t)j->a);
  while (n < 0 && errno == EINTR);
  j->err = n < 0 ? errno : 0;
  j->ret = n;
}

/* pwritev(fd, buffers, position, uid?, gid?): the array is kept alive (and must not change) until
 * the call settles. */
static napi_value js_pwritev(napi_env env, napi_callback_info info) {
  ARGS(5);
  job *j = job_new("pwritev", do_pwritev, done_int);
  if (!j || !arg_i32(env, argv[0], &j->fd)) return job_abort(env, j);
  bool is;
  uint32_t n;
  if (napi_is_array(env, argv[1], &is) != napi_ok || !is || napi_get_array_length(env, argv[1], &n) != napi_ok) {
    type_error(env, "expected an array of Uint8Arrays");
    return job_abort(env, j);
  }
  if (n == 0 || n > IOV_MAX) {
    range_error(env, "between 1 and IOV_MAX buffers");
    return job_abort(env, j);
  }
  if (!(j->iov = calloc(n, sizeof *j->iov))) return job_abort(env, j);
  j->iovcnt = (int)n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || !arg_bytes(env, v, &j->iov[i].iov_base, &j->iov[i].iov_len))
      return job_abort(env, j);
  }
  if (napi_create_reference(env, argv[1], 1, &j->bufref) != napi_ok || !arg_b64(env, argv[2], &j->a) ||
      !arg_cred(env, argv[3], argv[4], j))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_pread(napi_env env, napi_callback_info info) { return rw(env, info, "pread", do_pread); }
static napi_value js_pwrite(napi_env env, napi_callback_info info) { return rw(env, info, "pwrite", do_pwrite); }

/* Directory offsets (d_off) are opaque cookies, valid for lseek on this
 * directory. Seek and read in one hop so the caller can resume anywhere. */
static void do_getdents(job *j) {
  if (lseek(j->fd, (off_t)j->a, SEEK_SET) < 0) {
    j->err = errno;
    j->op = "lseek";
    return;
  }
  ssize_t n = getdents64(j->fd, j->buf, j->len);
  j->err = n < 0 ? errno : 0;
  j->ret = n;
}

static napi_value js_getdents(napi_env env, napi_callback_info info) {
  ARGS(3);
  job *j = job_new("getdents64", do_getdents, done_int);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_b64(env, argv[1], &j->a) || !arg_buffer(env, argv[2], j))
    return job_abort(env, j);
  return job_start(env, j);
}

/* Treaddir in one call: getdents64 from the cookie, each entry written as a 9P2000.L dirent
 * (qid[13] offset[8] type[1] name[s], little-endian) straight into the reply frame, until the
 * directory ends or the next entry does not fit. Turning ~10,000 entries into 9P in JavaScript
 * cost twice getdents itself; the model's rules come as data instead (readdir_rules). An entry
 * whose qid path the rules cannot express (an inode number above max_ino) stops the call:
 * JavaScript goes on from the cookie returned, with the full QidMapper. */
typedef struct {
  uint8_t type_map[16];   /* host d_type -> the guest's */
  uint64_t path_prefix;   /* qid.path = prefix | d_ino ... */
  uint64_t max_ino;       /* ... for d_ino <= max_ino */
  uint64_t dotdot_path;   /* qid.path of "..", if not 0 (the export root's own "..") */
} readdir_rules;

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++, v >>= 8) p[i] = (uint8_t)v;
}

static bool is_reserved(const job *j, const char *name) {
  const char *r = j->names;
  for (uint32_t i = 0; i < j->nnames; i++, r += strlen(r) + 1)
    if (strcmp(r, name) == 0) return true;
  return false;
}

static void do_readdir9p(job *j) {
  const readdir_rules *rules = (const readdir_rules *)j->out;
  if (lseek(j->fd, (off_t)j->a, SEEK_SET) < 0) {
    j->err = errno;
    j->op = "lseek";
    return;
  }
  /* Room for the largest record however small the reply, and no more than the reply can take. */
  size_t dlen = j->len < 4096 ? 4096 : j->len > (64 << 10) ? (64 << 10) : j->len;
  char *d = malloc(dlen);
  if (!d) {
    j->err = ENOMEM;
    return;
  }
  uint8_t *o = j->buf;
  size_t at = 0;
  int64_t resume = j->a;
  bool stop = false;
  while (!stop) {
    ssize_t n = getdents64(j->fd, d, dlen);
    if (n < 0) {
      j->err = errno;
      j->op = "getdents64";
      break;
    }
    if (n == 0) break;
    for (ssize_t p = 0; p < n;) {
      uint64_t ino;
      int64_t off;
      uint16_t reclen;
      memcpy(&ino, d + p, 8);
      memcpy(&off, d + p + 8, 8);
      memcpy(&reclen, d + p + 16, 2);
      uint8_t type = (uint8_t)d[p + 18];
      const char *name = d + p + 19;
      size_t nlen = strnlen(name, reclen - 19);
      p += reclen;
      if (is_reserved(j, name)) {
        resume = off;
        continue;
      }
      uint64_t path;
      if (rules->dotdot_path && nlen == 2 && name[0] == '.' && name[1] == '.') path = rules->dotdot_path;
      else if (ino <= rules->max_ino) path = rules->path_prefix | ino;
      else {
        j->c = 1;
        stop = true;
        break;
      }
      if (at + 24 + nlen > j->len) {
        stop = true;
        break;
      }
      uint8_t t = rules->type_map[type & 15];
      uint8_t *e = o + at;
      e[0] = t == DT_DIR ? 0x80 : t == DT_LNK ? 0x02 : 0; /* QTDIR, QTSYMLINK, QTFILE */
      put_le(e + 1, 0, 4);
      put_le(e + 5, path, 8);
      put_le(e + 13, (uint64_t)off, 8);
      e[21] = t;
      put_le(e + 22, nlen, 2);
      memcpy(e + 24, name, nlen);
      at += 24 + nlen;
      resume = off;
    }
  }
  free(d);
  j->ret = (int64_t)at;
  j->b = resume;
}

static napi_value done_readdir9p(napi_env env, job *j) {
  napi_value arr, bytes, cookie, more;
  if (napi_create_array_with_length(env, 3, &arr) != napi_ok || napi_create_int64(env, j->ret, &bytes) != napi_ok ||
      napi_create_bigint_int64(env, j->b, &cookie) != napi_ok || napi_get_boolean(env, j->c != 0, &more) != napi_ok ||
      napi_set_element(env, arr, 0, bytes) != napi_ok || napi_set_element(env, arr, 1, cookie) != napi_ok ||
      napi_set_element(env, arr, 2, more) != napi_ok)
    return NULL;
  return arr;
}

/* readdir9p(fd, cookie, frame, offset, limit, typeMap, pathPrefix, maxIno, dotdotPath, reserved?) */
static napi_value js_readdir9p(napi_env env, napi_callback_info info) {
  ARGS(10);
  job *j = job_new("readdir", do_readdir9p, done_readdir9p);
  if (!j) return NULL;
  readdir_rules *rules = calloc(1, sizeof *rules);
  j->out = (char *)rules;
  void *map;
  size_t maplen;
  int64_t prefix, max_ino, dotdot;
  if (!rules || !arg_i32(env, argv[0], &j->fd) || !arg_b64(env, argv[1], &j->a) ||
      !arg_window(env, argv[2], argv[3], argv[4], j) || !arg_bytes(env, argv[5], &map, &maplen) ||
      !arg_b64(env, argv[6], &prefix) || !arg_b64(env, argv[7], &max_ino) || !arg_b64(env, argv[8], &dotdot))
    return job_abort(env, j);
  if (maplen != 16) {
    range_error(env, "typeMap must have 16 entries");
    return job_abort(env, j);
  }
  memcpy(rules->type_map, map, 16);
  rules->path_prefix = (uint64_t)prefix;
  rules->max_ino = (uint64_t)max_ino;
  rules->dotdot_path = (uint64_t)dotdot;
  napi_valuetype t;
  if (napi_typeof(env, argv[9], &t) != napi_ok) return job_abort(env, j);
  if (t != napi_undefined) {
    void *names;
    size_t len;
    if (!arg_bytes(env, argv[9], &names, &len)) return job_abort(env, j);
    if (len == 0 || ((char *)names)[len - 1] != 0) {
      range_error(env, "reserved names must each end with a NUL");
      return job_abort(env, j);
    }
    if (!(j->names = malloc(len))) return job_abort(env, j);
    memcpy(j->names, names, len);
    for (size_t i = 0; i < len; i++) j->nnames += ((char *)names)[i] == 0;
  }
  return job_start(env, j);
}

/* ---------- creating, linking, removing ---------- */

static void do_mkdirat(job *j) { RET(mkdirat(j->fd, j->name, (mode_t)j->mode)); }
static void do_mknodat(job *j) { RET(mknodat(j->fd, j->name, (mode_t)j->mode, (dev_t)j->a)); }
static void do_symlinkat(job *j) { RET(symlinkat(j->name2, j->fd, j->name)); }
static void do_unlinkat(job *j) { RET(unlinkat(j->fd, j->name, j->flags)); }
static void do_renameat(job *j) { RET(renameat2(j->fd, j->name, j->fd2, j->name2, (unsigned)j->flags)); }

/* linkat(fd, "", ..., AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH on most
 * kernels; following the proc magic link does the same thing unprivileged. */
static void do_linkat(job *j) {
  char p[32];
  proc_path(p, j->fd);
  RET(linkat(AT_FDCWD, p, j->fd2, j->name, AT_SYMLINK_FOLLOW));
}

static napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  ARGS(5);
  job *j = job_new("mkdirat", do_mkdirat, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_component(env, argv[1], j, &j->name) ||
      !arg_u32(env, argv[2], &j->mode) || !arg_cred(env, argv[3], argv[4], j))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_mknodat(napi_env env, napi_callback_info info) {
  ARGS(6);
  job *j = job_new("mknodat", do_mknodat, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_component(env, argv[1], j, &j->name) ||
      !arg_u32(env, argv[2], &j->mode) || !arg_b64(env, argv[3], &j->a) || !arg_cred(env, argv[4], argv[5], j))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  ARGS(5);
  job *j = job_new("symlinkat", do_symlinkat, NULL);
  if (!j || !arg_name(env, argv[0], j, &j->name2) || !arg_i32(env, argv[1], &j->fd) ||
      !arg_component(env, argv[2], j, &j->name) || !arg_cred(env, argv[3], argv[4], j))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_linkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  job *j = job_new("linkat", do_linkat, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_i32(env, argv[1], &j->fd2) ||
      !arg_component(env, argv[2], j, &j->name))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_renameat(napi_env env, napi_callback_info info) {
  ARGS(5);
  job *j = job_new("renameat2", do_renameat, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_component(env, argv[1], j, &j->name) ||
      !arg_i32(env, argv[2], &j->fd2) || !arg_component(env, argv[3], j, &j->name2) || !arg_i32(env, argv[4], &j->flags))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  job *j = job_new("unlinkat", do_unlinkat, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_component(env, argv[1], j, &j->name) ||
      !arg_i32(env, argv[2], &j->flags))
    return job_abort(env, j);
  return job_start(env, j);
}

/* An empty path on an O_PATH fd of a symlink reads that symlink. */
static void do_readlink(job *j) {
  if (!(j->out = malloc(PATH_MAX))) {
    j->err = ENOMEM;
    return;
  }
  ssize_t n = readlinkat(j->fd, "", j->out, PATH_MAX);
  j->err = n < 0 ? errno : 0;
  j->outlen = n < 0 ? 0 : (size_t)n;
}

static napi_value js_readlink(napi_env env, napi_callback_info info) {
  ARGS(1);
  job *j = job_new("readlinkat", do_readlink, done_out);
  if (!j || !arg_i32(env, argv[0], &j->fd)) return job_abort(env, j);
  return job_start(env, j);
}

/* ---------- attributes ---------- */

/* fchownat with AT_EMPTY_PATH is unprivileged-friendly and handles symlinks. */
static void do_fchown(job *j) {
  RET(fchownat(j->fd, "", (uid_t)j->uid, (gid_t)j->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
}

/* chmod and utimes of the object itself (a symlink's own times; its mode, EOPNOTSUPP). fchmod()
 * and futimens() refuse O_PATH fds (EBADF); fchmodat2 (Linux 6.6) and utimensat (5.8) with
 * AT_EMPTY_PATH take them without walking /proc (2-3 us a call); older kernels refuse that and
 * get the magic link, which does the same. */
static void do_fchmod(job *j) {
  char p[32];
  if (syscall(__NR_fchmodat2, j->fd, "", (mode_t)j->mode, AT_EMPTY_PATH) == 0) {
    j->err = 0;
    return;
  }
  if (errno != ENOSYS && errno != EINVAL) {
    j->err = errno;
    return;
  }
  proc_path(p, j->fd);
  RET(fchmodat(AT_FDCWD, p, (mode_t)j->mode, 0));
}

static void do_utimens(job *j) {
  char p[32];
  struct timespec ts[2] = {{.tv_sec = j->a, .tv_nsec = j->b}, {.tv_sec = j->c, .tv_nsec = j->d}};
  if (utimensat(j->fd, "", ts, AT_EMPTY_PATH) == 0) {
    j->err = 0;
    return;
  }
  if (errno != EINVAL) {
    j->err = errno;
    return;
  }
  proc_path(p, j->fd);
  RET(utimensat(AT_FDCWD, p, ts, 0));
}

/* ftruncate needs a writable open file; truncate() through the magic link
 * works from an O_PATH fd (with the usual write-permission check). */
static void do_truncate(job *j) {
  char p[32];
  if (j->flags) {
    j->op = "ftruncate";
    RET(ftruncate(j->fd, (off_t)j->a));
  } else {
    proc_path(p, j->fd);
    RET(truncate(p, (off_t)j->a));
  }
}

static void do_fsync(job *j) {
  if (j->flags) j->op = "fdatasync";
  RET(j->flags ? fdatasync(j->fd) : fsync(j->fd));
}

static void do_fstatfs(job *j) {
  struct statfs s;
  if (fstatfs(j->fd, &s) < 0) {
    j->err = errno;
    return;
  }
  if (!(j->stats = malloc(NSTATFS * sizeof *j->stats))) {
    j->err = ENOMEM;
    return;
  }
  uint64_t *o = j->stats;
  o[0] = (uint64_t)s.f_type, o[1] = (uint64_t)s.f_bsize, o[2] = s.f_blocks, o[3] = s.f_bfree;
  o[4] = s.f_bavail, o[5] = s.f_files, o[6] = s.f_ffree;
  o[7] = (uint64_t)(uint32_t)s.f_fsid.__val[0] | (uint64_t)(uint32_t)s.f_fsid.__val[1] << 32;
  o[8] = (uint64_t)s.f_namelen;
}

static napi_value done_statfs(napi_env env, job *j) { return u64_array(env, j->stats, NSTATFS); }

static napi_value js_fchown(napi_env env, napi_callback_info info) {
  ARGS(3);
  job *j = job_new("fchownat", do_fchown, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_u32(env, argv[1], &j->uid) || !arg_u32(env, argv[2], &j->gid))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_fchmod(napi_env env, napi_callback_info info) {
  ARGS(2);
  job *j = job_new("fchmodat", do_fchmod, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_u32(env, argv[1], &j->mode)) return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_utimens(napi_env env, napi_callback_info info) {
  ARGS(5);
  job *j = job_new("utimensat", do_utimens, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_b64(env, argv[1], &j->a) || !arg_b64(env, argv[2], &j->b) ||
      !arg_b64(env, argv[3], &j->c) || !arg_b64(env, argv[4], &j->d))
    return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_truncate(napi_env env, napi_callback_info info) {
  ARGS(3);
  job *j = job_new("truncate", do_truncate, NULL);
  bool open;
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_b64(env, argv[1], &j->a) || !arg_bool(env, argv[2], &open))
    return job_abort(env, j);
  j->flags = open;
  return job_start(env, j);
}

static napi_value js_fsync(napi_env env, napi_callback_info info) {
  ARGS(2);
  job *j = job_new("fsync", do_fsync, NULL);
  bool data;
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_bool(env, argv[1], &data)) return job_abort(env, j);
  j->flags = data;
  return job_start(env, j);
}

static napi_value js_fstatfs(napi_env env, napi_callback_info info) {
  ARGS(1);
  job *j = job_new("fstatfs", do_fstatfs, done_statfs);
  if (!j || !arg_i32(env, argv[0], &j->fd)) return job_abort(env, j);
  return job_start(env, j);
}

/* ---------- xattrs (all via the magic link, so O_PATH fds work) ---------- */

/* Size with a first call, then fetch; the value may grow in between (ERANGE),
 * so go round again. get selects getxattr, else listxattr. */
static void xattr_fetch(job *j, bool get) {
  char p[32];
  proc_path(p, j->fd);
  for (;;) {
    ssize_t size = get ? getxattr(p, j->name, NULL, 0) : listxattr(p, NULL, 0);
    if (size < 0) break;
    free(j->out);
    if (!(j->out = malloc(size ? (size_t)size : 1))) {
      j->err = ENOMEM;
      return;
    }
    ssize_t n = get ? getxattr(p, j->name, j->out, (size_t)size) : listxattr(p, j->out, (size_t)size);
    if (n >= 0) {
      j->outlen = (size_t)n;
      j->err = 0;
      return;
    }
    if (errno != ERANGE) break;
  }
  j->err = errno;
}

static void do_getxattr(job *j) { xattr_fetch(j, true); }
static void do_listxattr(job *j) { xattr_fetch(j, false); }

static void do_setxattr(job *j) {
  char p[32];
  proc_path(p, j->fd);
  RET(setxattr(p, j->name, j->out, j->outlen, j->flags));
}

static void do_removexattr(job *j) {
  char p[32];
  proc_path(p, j->fd);
  RET(removexattr(p, j->name));
}

static napi_value js_getxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  job *j = job_new("getxattr", do_getxattr, done_out);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_name(env, argv[1], j, &j->name)) return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_listxattr(napi_env env, napi_callback_info info) {
  ARGS(1);
  job *j = job_new("listxattr", do_listxattr, done_out);
  if (!j || !arg_i32(env, argv[0], &j->fd)) return job_abort(env, j);
  return job_start(env, j);
}

static napi_value js_setxattr(napi_env env, napi_callback_info info) {
  ARGS(4);
  job *j = job_new("setxattr", do_setxattr, NULL);
  void *val;
  size_t len;
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_name(env, argv[1], j, &j->name) ||
      !arg_bytes(env, argv[2], &val, &len) || !arg_i32(env, argv[3], &j->flags))
    return job_abort(env, j);
  /* Values are small (<= 64 KiB) and binary: copy rather than pin. */
  if (!(j->out = malloc(len ? len : 1))) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return job_abort(env, j);
  }
  memcpy(j->out, val, len);
  j->outlen = len;
  return job_start(env, j);
}

static napi_value js_removexattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  job *j = job_new("removexattr", do_removexattr, NULL);
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_name(env, argv[1], j, &j->name)) return job_abort(env, j);
  return job_start(env, j);
}

/* ---------- OFD locks ---------- */

/* OFD locks belong to the open file description, not the process, so two
 * fids (fds) in this one process can conflict, as two 9P clients should. */
static const short lock_types[3] = {F_RDLCK, F_WRLCK, F_UNLCK}; /* 9P numbering */

static int lock_9p(short t) { return t == F_RDLCK ? 0 : t == F_WRLCK ? 1 : 2; }

static void do_lock(job *j) {
  if (fcntl(j->fd, F_OFD_SETLK, &j->fl) == 0) {
    j->ret = 1;
  } else if (errno == EAGAIN || errno == EACCES) {
    j->ret = 0; /* conflict: not an error, the caller answers "blocked" */
  } else {
    j->err = errno;
  }
}

static void do_getlock(job *j) { RET(fcntl(j->fd, F_OFD_GETLK, &j->fl)); }

static napi_value done_lock(napi_env env, job *j) {
  napi_value v;
  return napi_get_boolean(env, j->ret != 0, &v) == napi_ok ? v : NULL;
}

static napi_value done_getlock(napi_env env, job *j) {
  napi_value o, t, s, l, p;
  if (napi_create_object(env, &o) != napi_ok || napi_create_int32(env, lock_9p(j->fl.l_type), &t) != napi_ok ||
      napi_create_bigint_int64(env, j->fl.l_start, &s) != napi_ok ||
      napi_create_bigint_int64(env, j->fl.l_len, &l) != napi_ok || napi_create_int32(env, j->fl.l_pid, &p) != napi_ok ||
      napi_set_named_property(env, o, "type", t) != napi_ok || napi_set_named_property(env, o, "start", s) != napi_ok ||
      napi_set_named_property(env, o, "length", l) != napi_ok || napi_set_named_property(env, o, "pid", p) != napi_ok)
    return NULL;
  return o;
}

static napi_value lock_call(napi_env env, napi_callback_info info, const char *op, void (*exec)(job *),
                            napi_value (*done)(napi_env, job *)) {
  ARGS(4);
  job *j = job_new(op, exec, done);
  int type;
  if (!j || !arg_i32(env, argv[0], &j->fd) || !arg_i32(env, argv[1], &type) || !arg_b64(env, argv[2], &j->a) ||
      !arg_b64(env, argv[3], &j->b))
    return job_abort(env, j);
  if (type < 0 || type > 2) j->err = EINVAL;
  else j->fl = (struct flock){.l_type = lock_types[type], .l_whence = SEEK_SET, .l_start = j->a, .l_len = j->b};
  return job_start(env, j); /* l_pid stays 0, as OFD locks require */
}

static napi_value js_lock(napi_env env, napi_callback_info info) {
  return lock_call(env, info, "fcntl", do_lock, done_lock);
}

static napi_value js_getlock(napi_env env, napi_callback_info info) {
  return lock_call(env, info, "fcntl", do_getlock, done_getlock);
}

/* ---------- synchronous helpers ---------- */

/* setAmbientCredentials(uid, gid) / setAmbientCredentials(): see job_new. */
static napi_value js_set_ambient(napi_env env, napi_callback_info info) {
  ARGS(2);
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok) return NULL;
  if (t == napi_undefined) {
    ambient_set = false;
  } else {
    if (!arg_u32(env, argv[0], &ambient_uid) || !arg_u32(env, argv[1], &ambient_gid)) return NULL;
    ambient_set = true;
  }
  return NULL;
}

/* Where a Uint8Array's first byte lies within its memory page. The kernel's copies run about five
 * times slower on AMD Zen when the destination lies 1 to 31 bytes past the source within a page,
 * and JavaScript cannot see an address: frames are placed with this (server/frame-pool.ts). */
static napi_value js_address_in_page(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  if (!arg_bytes(env, argv[0], &data, &len)) return NULL;
  napi_value v;
  return napi_create_uint32(env, (uint32_t)((uintptr_t)data & 4095), &v) == napi_ok ? v : NULL;
}

/* Number of open fds, for leak tests. Excludes the fd opendir itself uses. */
static napi_value js_open_fd_count(napi_env env, napi_callback_info info) {
  (void)info;
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    napi_value e = errno_error(env, "opendir", errno);
    if (e) napi_throw(env, e);
    return NULL;
  }
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  napi_value v;
  return napi_create_int32(env, n - 1, &v) == napi_ok ? v : NULL;
}

/* Every fid holds a descriptor, so the server wants the most it may have: lift the soft
 * RLIMIT_NOFILE to the hard one (an unprivileged process may). Returns the soft limit now. */
static napi_value js_raise_fd_limit(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    napi_value e = errno_error(env, "getrlimit", errno);
    if (e) napi_throw(env, e);
    return NULL;
  }
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) getrlimit(RLIMIT_NOFILE, &r);
  }
  napi_value v;
  return napi_create_double(env, r.rlim_cur == RLIM_INFINITY ? -1 : (double)r.rlim_cur, &v) == napi_ok ? v : NULL;
}

/* ---------- process ---------- */

/* A JS string as a malloc'd NUL-terminated UTF-8 copy, or NULL. */
static char *utf8_copy(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

/* A JS array of strings as a NULL-terminated vector of copies, or NULL. */
static char **utf8_vector(napi_env env, napi_value arr) {
  uint32_t n;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **out = calloc((size_t)n + 1, sizeof *out);
  for (uint32_t i = 0; out && i < n; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok || !(out[i] = utf8_copy(env, e))) {
      for (uint32_t k = 0; k < i; k++) free(out[k]);
      free(out);
      return NULL;
    }
  }
  return out;
}

/* execve(path, argv, env): replaces the process (same pid, same stdio), so it returns
 * only on failure, by throwing. The CLI uses it to restart Node with UV_THREADPOOL_SIZE set
 * before libuv's pool exists (Node 20 has no process.execve). */
static napi_value js_execve(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *path = utf8_copy(env, argv[0]);
  char **args = utf8_vector(env, argv[1]);
  char **envp = utf8_vector(env, argv[2]);
  int err = EINVAL;
  if (path && args && envp) {
    /* Node marks stdin, stdout and stderr close-on-exec; the new image must keep them. */
    for (int fd = 0; fd <= 2; fd++) {
      int f = fcntl(fd, F_GETFD);
      if (f >= 0) fcntl(fd, F_SETFD, f & ~FD_CLOEXEC);
    }
    execve(path, args, envp);
    err = errno;
  }
  free(path);
  for (char **p = args; p && *p; p++) free(*p);
  for (char **p = envp; p && *p; p++) free(*p);
  free(args);
  free(envp);
  napi_value e = errno_error(env, "execve", err);
  if (e) napi_throw(env, e);
  return NULL;
}

/* ---------- where a call runs ---------- */

/* Larger reads keep the pool: copying them would hold the JS thread longer than the hop costs,
 * and threads copy them in parallel. */
#define INLINE_READ_MAX (128 << 10)

/* A read of at most INLINE_READ_MAX bytes, asked for or left before the end of the file (the
 * Linux client asks for a whole msize however small the file). */
/* A listing of a large directory stays on the pool: thousands of entries of an ext4 htree
 * directory cost milliseconds, mostly hashing names, and would stall every other client. Small
 * directories are listed inline whatever the reply's size: the Linux client always asks for a
 * whole msize. A directory's st_size follows its entries on ext4, xfs, btrfs and tmpfs alike. */
#define INLINE_READDIR_MAX (16 << 10)

static bool lists_little(job *j) {
  struct stat st;
  return j->len <= INLINE_READDIR_MAX || (fstat(j->fd, &st) == 0 && st.st_size <= INLINE_READDIR_MAX);
}

static bool reads_little(job *j) {
  struct stat st;
  if (j->len <= INLINE_READ_MAX) return true;
  return fstat(j->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size - j->a <= INLINE_READ_MAX;
}

/* Freeing more than 1 MiB of blocks (st_blocks counts 512-byte units) may wait on the disk. */
#define FREES_MUCH_BLOCKS 2048

/* Removing the last name of a large file frees its blocks in the call. */
static bool frees_much(int dirfd, const char *name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
         st.st_blocks > FREES_MUCH_BLOCKS;
}

/* Opening with O_TRUNC frees the file's blocks in the call, as removing its last name does. A name
 * that does not exist yet (the usual O_CREAT|O_TRUNC) or a small file is cheap to truncate. */
static bool truncates_much(job *j) {
  struct stat st;
  int r = j->exec == do_reopen ? fstat(j->fd, &st) : fstatat(j->fd, j->name, &st, AT_SYMLINK_NOFOLLOW);
  return r == 0 && S_ISREG(st.st_mode) && st.st_blocks > FREES_MUCH_BLOCKS;
}

/* Larger writes keep the pool, as reads do. */
#define INLINE_WRITE_MAX (128 << 10)

/* Set by the server (setWritesInline) while the kernel would take a buffered write without
 * throttling it: dirty pages well below where balance_dirty_pages starts to make writers sleep. */
static bool writes_inline;

/* Whether the page holding byte AT of FD is in the page cache (cachestat(2), Linux 6.5; false
 * where it is missing or refused). */
static bool page_cached(int fd, off_t at, off_t page) {
  struct { uint64_t off, len; } range = {(uint64_t)(at - at % page), (uint64_t)page};
  struct { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; } cs;
  return syscall(__NR_cachestat, fd, &range, &cs, 0) == 0 && cs.nr_cache > 0;
}

/* A small buffered write to a regular file that only copies into the page cache: not O_SYNC,
 * O_DSYNC or O_DIRECT (which wait for the disk), and no page it covers in part must be read from
 * the disk first (a partial page at or past the end of the file is not read; one inside it must
 * be cached). */
static bool writes_little(job *j) {
  static off_t page;
  size_t len = j->len;
  if (!writes_inline || resizing) return false;
  if (j->iov) {
    len = 0;
    for (int i = 0; i < j->iovcnt; i++) len += j->iov[i].iov_len;
  }
  if (len > INLINE_WRITE_MAX) return false;
  int fl = fcntl(j->fd, F_GETFL);
  struct stat st;
  if (fl < 0 || fl & (O_SYNC | O_DSYNC | O_DIRECT) || fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode)) return false;
  if (!page) page = sysconf(_SC_PAGESIZE);
  off_t start = (off_t)j->a, end = start + (off_t)len;
  if (start % page && start - start % page < st.st_size && !page_cached(j->fd, start, page)) return false;
  if (end % page && end - end % page < st.st_size && end / page != start / page && !page_cached(j->fd, end, page))
    return false;
  return true;
}

/* A job that truncates (counted in `resizing` while it runs in the pool). */
static bool resizes(job *j) {
  return j->exec == do_truncate || ((j->exec == do_reopen || j->exec == do_openat) && j->flags & O_TRUNC);
}

/* Whether a job runs on the JS thread: cheap metadata calls whose descriptors are all local,
 * small reads the page cache can answer and small writes into it (while setWritesInline allows).
 * fsync, truncation (but an open's O_TRUNC of a small file) and locks that may wait stay in the
 * pool, as does everything on other filesystems (a slow one must never stall other clients). */
static bool runs_inline(job *j) {
  void (*e)(job *) = j->exec;
  uint64_t dev1 = local_of(j->fd);
  if (!dev1 || (j->fd2 >= 0 && !local_of(j->fd2)) || (j->meta_at >= 0 && !local_of(j->meta_at))) return false;
  if (e == do_open_path || e == do_walk) {
    for (uint32_t i = 0; j->known && i < j->nnames; i++)
      if (j->known[i] >= 0 && local_of(j->known[i]) != dev1) return false;
    j->lookup_dev = dev1;
    return true;
  }
  if (e == do_reopen || e == do_openat) return !(j->flags & O_TRUNC) || !truncates_much(j);
  if (e == do_unlinkat) return !frees_much(j->fd, j->name);
  if (e == do_renameat) return !frees_much(j->fd2, j->name2);
  if (e == do_pread && reads_little(j)) {
    j->exec = do_pread_cached;
    return true;
  }
  if (e == do_readdir9p) return lists_little(j);
  if (e == do_pwrite || e == do_pwritev) return writes_little(j);
  return e == do_fstat || e == do_close || e == do_getdents || e == do_mkdirat || e == do_mknodat ||
         e == do_symlinkat || e == do_linkat || e == do_readlink || e == do_fchown || e == do_fchmod ||
         e == do_utimens || e == do_fstatfs || e == do_getxattr || e == do_listxattr || e == do_setxattr ||
         e == do_removexattr || e == do_lock || e == do_getlock;
}

/* Descriptors handed to JS are local if opened from a local one onto the same filesystem (a
 * reopen is of the very object it was given). */
static void mark_delivered(job *j) {
  uint64_t dev1 = local_of(j->fd);
  for (uint32_t i = 0; i < j->nfds; i++) {
    bool same = j->exec == do_reopen || (j->stats && j->stats[i * NSTAT] + 1 == dev1);
    set_local(j->fds[i], dev1 && same ? dev1 : 0, j->stats ? j->stats[i * NSTAT + 1] : 0);
  }
}

/* setWritesInline(yes): whether small writes may run on the JS thread (see writes_little). */
static napi_value js_set_writes_inline(napi_env env, napi_callback_info info) {
  ARGS(1);
  if (napi_get_value_bool(env, argv[0], &writes_inline) != napi_ok) type_error(env, "expected a boolean");
  return NULL;
}

/* markLocal(fd): calls on fd, and on what is opened from it on its filesystem, may run on the JS
 * thread. The caller has decided the filesystem is local (fstatfs type). */
static napi_value js_mark_local(napi_env env, napi_callback_info info) {
  ARGS(1);
  int fd;
  struct stat st;
  if (!arg_i32(env, argv[0], &fd)) return NULL;
  if (fstat(fd, &st) < 0) {
    napi_value e = errno_error(env, "fstat", errno);
    if (e) napi_throw(env, e);
    return NULL;
  }
  set_local(fd, (uint64_t)st.st_dev + 1, st.st_ino);
  return NULL;
}

/* ---------- module ---------- */

/* fooNow(...): foo(...) through job_now. The callback's data is foo's own callback. */
static napi_value js_now(napi_env env, napi_callback_info info) {
  napi_callback target;
  if (napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&target) != napi_ok) return NULL;
  now_requested = true;
  napi_value v = target(env, info);
  now_requested = false;
  return v;
}

static bool set_int(napi_env env, napi_value obj, const char *name, int64_t value) {
  napi_value v;
  return napi_create_int64(env, value, &v) == napi_ok && napi_set_named_property(env, obj, name, v) == napi_ok;
}

#define C(x) {#x, x}

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback fn; } fns[] = {
      {"openPath", js_open_path},   {"walk", js_walk},           {"openRoot", js_open_root},
      {"fstat", js_fstat},          {"reopen", js_reopen},       {"openat", js_openat},
      {"close", js_close},          {"closeSync", js_close_sync}, {"pread", js_pread},
      {"pwrite", js_pwrite},        {"pwritev", js_pwritev},        {"getdents", js_getdents},   {"readdir9p", js_readdir9p}, {"mkdirat", js_mkdirat},
      {"mknodat", js_mknodat},      {"symlinkat", js_symlinkat}, {"readlink", js_readlink},
      {"linkat", js_linkat},        {"renameat", js_renameat},   {"unlinkat", js_unlinkat},
      {"fchown", js_fchown},        {"fchmod", js_fchmod},       {"utimens", js_utimens},
      {"truncate", js_truncate},    {"fsync", js_fsync},         {"fstatfs", js_fstatfs},
      {"getxattr", js_getxattr},    {"listxattr", js_listxattr}, {"setxattr", js_setxattr},
      {"removexattr", js_removexattr}, {"lock", js_lock},        {"getlock", js_getlock},
      {"openFdCount", js_open_fd_count}, {"raiseFdLimit", js_raise_fd_limit},
      {"setAmbientCredentials", js_set_ambient}, {"execve", js_execve},
      {"markLocal", js_mark_local}, {"setWritesInline", js_set_writes_inline},
      {"addressInPage", js_address_in_page},
  };
  static const struct { const char *name; int64_t value; } consts[] = {
      C(O_RDONLY),    C(O_WRONLY),   C(O_RDWR),     C(O_ACCMODE),    C(O_CREAT),          C(O_EXCL),
      C(O_NOCTTY),    C(O_TRUNC),    C(O_APPEND),   C(O_NONBLOCK),   C(O_DSYNC),          C(O_DIRECT),
      C(O_LARGEFILE), C(O_DIRECTORY), C(O_NOFOLLOW), C(O_NOATIME),   C(O_CLOEXEC),        C(O_SYNC),
      C(O_PATH),      C(AT_REMOVEDIR), C(RENAME_NOREPLACE), C(RENAME_EXCHANGE), C(S_IFMT), C(S_IFREG),        C(S_IFDIR),
      C(S_IFLNK),     C(S_IFCHR),    C(S_IFBLK),    C(S_IFIFO),      C(S_IFSOCK),
      C(UTIME_NOW),   C(UTIME_OMIT), C(XATTR_CREATE), C(XATTR_REPLACE),
  };
  server_ngroups = getgroups(sizeof server_groups / sizeof *server_groups, server_groups);
  napi_value fn, o;
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok)
      return NULL;
  static const struct { const char *name; napi_callback fn; } now_fns[] = {
      {"fstatNow", js_fstat},
      {"walkNow", js_walk},
      {"reopenNow", js_reopen},
      {"preadNow", js_pread},
      {"readdir9pNow", js_readdir9p},
  };
  for (size_t i = 0; i < sizeof now_fns / sizeof *now_fns; i++)
    if (napi_create_function(env, now_fns[i].name, NAPI_AUTO_LENGTH, js_now, (void *)now_fns[i].fn, &fn) != napi_ok ||
        napi_set_named_property(env, exports, now_fns[i].name, fn) != napi_ok)
      return NULL;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  for (size_t i = 0; i < sizeof consts / sizeof *consts; i++)
    if (!set_int(env, o, consts[i].name, consts[i].value)) return NULL;
  if (napi_set_named_property(env, exports, "constants", o) != napi_ok) return NULL;
  return exports;
}
