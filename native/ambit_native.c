// ambit_native: the few socket operations Node cannot do by itself, for the in-pod proxy.
//
// - Creating a socket inside another network namespace. A socket belongs to the netns of the thread
//   that called socket(); everything after that (bind, listen, connect, I/O) works from any thread.
//   Node's main thread must never change netns (libuv, DNS and every other socket would follow it), so
//   socket() runs on a short-lived helper thread that calls setns() and exits.
// - SO_MARK, IP_TRANSPARENT / IP_FREEBIND, SO_ORIGINAL_DST, which net.Socket does not expose.
//
// Every function is synchronous and cheap (no blocking I/O). Errors are thrown as JS Error objects with
// `.code` = the errno name (EPERM, EADDRINUSE, ...), `.syscall` = the failing call, and a message that
// names the call and its subject, e.g. "bind(10.0.0.1:15001): EADDRINUSE (Address already in use)".
#define _GNU_SOURCE
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h; those headers clash with the
// libc network headers, so only the two constants are taken.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define DEFAULT_BACKLOG 511 // libuv's and Node's default listen backlog
#define HELPER_STACK_SIZE (64 * 1024)

// ---------------------------------------------------------------------------------------------------
// Errors

static void throw_error(napi_env env, const char *code, const char *syscall, const char *message) {
  napi_value js_code, js_message, js_syscall, error;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_message);
  napi_create_error(env, js_code, js_message, &error);
  if (syscall != NULL) {
    napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall);
    napi_set_named_property(env, error, "syscall", js_syscall);
  }
  napi_throw(env, error);
}

// Throws "<syscall>(<subject>): <ENAME> (<strerror>)" with .code = ENAME.
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *subject) {
  const char *name = strerrorname_np(err);
  char message[4400]; // fits a PATH_MAX subject
  if (name == NULL) name = "EUNKNOWN";
  snprintf(message, sizeof message, "%s(%s): %s (%s)", syscall, subject, name, strerror(err));
  throw_error(env, name, syscall, message);
  return NULL;
}

static napi_value throw_invalid(napi_env env, const char *message) {
  throw_error(env, "ERR_INVALID_ARG_VALUE", NULL, message);
  return NULL;
}

// ---------------------------------------------------------------------------------------------------
// Argument helpers. Each returns false after throwing.

static bool arg_int32(napi_env env, napi_value value, const char *what, int32_t *out) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type != napi_number || napi_get_value_int32(env, value, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "%s must be a number", what);
    throw_invalid(env, message);
    return false;
  }
  return true;
}

static bool arg_string(napi_env env, napi_value value, const char *what, char *buf, size_t size) {
  napi_valuetype type;
  size_t len;
  napi_typeof(env, value, &type);
  if (type != napi_string || napi_get_value_string_utf8(env, value, buf, size, &len) != napi_ok ||
      len >= size - 1) {
    char message[128];
    snprintf(message, sizeof message, "%s must be a string shorter than %zu bytes", what, size - 1);
    throw_invalid(env, message);
    return false;
  }
  return true;
}

// Optional property of an options object; *present = false when missing or undefined.
static bool opt_get(napi_env env, napi_value opts, const char *key, napi_value *out, bool *present) {
  napi_valuetype type;
  *present = false;
  if (opts == NULL) return true;
  if (napi_get_named_property(env, opts, key, out) != napi_ok) return false;
  napi_typeof(env, *out, &type);
  *present = type != napi_undefined && type != napi_null;
  return true;
}

static bool opt_bool(napi_env env, napi_value opts, const char *key, bool *out) {
  napi_value value;
  bool present;
  *out = false;
  if (!opt_get(env, opts, key, &value, &present)) return false;
  if (present && napi_get_value_bool(env, value, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "option %s must be a boolean", key);
    throw_invalid(env, message);
    return false;
  }
  return true;
}

static bool opt_uint32(napi_env env, napi_value opts, const char *key, uint32_t *out, bool *present) {
  napi_value value;
  if (!opt_get(env, opts, key, &value, present)) return false;
  if (*present && napi_get_value_uint32(env, value, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "option %s must be a non-negative integer", key);
    throw_invalid(env, message);
    return false;
  }
  return true;
}

// The options object is the argument at `index` when it is an object, otherwise NULL (no options).
static napi_value opts_arg(napi_env env, size_t argc, napi_value *argv, size_t index) {
  napi_valuetype type;
  if (argc <= index) return NULL;
  napi_typeof(env, argv[index], &type);
  return type == napi_object ? argv[index] : NULL;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Addresses

typedef struct {
  struct sockaddr_storage storage;
  socklen_t len;
  int family;
} address_t;

static bool parse_address(const char *host, int port, address_t *addr) {
  memset(addr, 0, sizeof *addr);
  if (port < 0 || port > 65535) return false;
  struct sockaddr_in *in4 = (struct sockaddr_in *)&addr->storage;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr->storage;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    addr->len = sizeof *in4;
    addr->family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    addr->len = sizeof *in6;
    addr->family = AF_INET6;
    return true;
  }
  return false;
}

// "10.0.0.1:80" or "[fd00::1]:80", for error messages.
static void format_hostport(const char *host, int port, char *buf, size_t size) {
  if (strchr(host, ':') != NULL) snprintf(buf, size, "[%s]:%d", host, port);
  else snprintf(buf, size, "%s:%d", host, port);
}

// ---------------------------------------------------------------------------------------------------
// Socket creation inside a netns

typedef struct {
  int netns_fd;
  int domain;
  int type;
  int *fds;
  int count;
  int err;
  const char *failed;
} socket_request_t;

static void *socket_in_netns_thread(void *arg) {
  socket_request_t *req = arg;
  // This thread's netns changes; it exits right after, so no other code ever runs in it.
  if (setns(req->netns_fd, CLONE_NEWNET) != 0) {
    req->err = errno;
    req->failed = "setns";
    return NULL;
  }
  for (int i = 0; i < req->count; i++) {
    req->fds[i] = socket(req->domain, req->type | SOCK_CLOEXEC, 0);
    if (req->fds[i] < 0) {
      req->err = errno;
      req->failed = "socket";
      while (i-- > 0) close(req->fds[i]);
      return NULL;
    }
  }
  return NULL;
}

// Fills fds[0..count) with new sockets in the netns (the current one for netns_fd < 0). One helper thread
// makes them all: the thread and its setns() cost far more than a socket(), so batches amortise them.
// Returns false with *err / *failed set, and no fd left open, on failure.
static bool create_sockets(int netns_fd, int domain, int type, int *fds, int count, int *err, const char **failed) {
  if (netns_fd < 0) {
    for (int i = 0; i < count; i++) {
      fds[i] = socket(domain, type | SOCK_CLOEXEC, 0);
      if (fds[i] < 0) {
        *err = errno;
        *failed = "socket";
        while (i-- > 0) close(fds[i]);
        return false;
      }
    }
    return true;
  }
  socket_request_t req = {.netns_fd = netns_fd, .domain = domain, .type = type, .fds = fds, .count = count,
                          .err = 0, .failed = NULL};
  pthread_attr_t attr;
  pthread_t thread;
  sigset_t all, old;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, HELPER_STACK_SIZE);
  // The helper inherits this mask: it must never be picked to run a process-directed signal handler.
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&thread, &attr, socket_in_netns_thread, &req);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    *err = rc;
    *failed = "pthread_create";
    return false;
  }
  pthread_join(thread, NULL);
  if (req.failed != NULL) {
    *err = req.err;
    *failed = req.failed;
    return false;
  }
  return true;
}

typedef struct {
  bool has_mark;
  uint32_t mark;
  bool reuseport;
  bool reuseaddr;
  bool transparent;
  bool freebind;
  bool nonblocking;
} socket_opts_t;

static bool read_socket_opts(napi_env env, napi_value opts, socket_opts_t *o) {
  memset(o, 0, sizeof *o);
  return opt_uint32(env, opts, "mark", &o->mark, &o->has_mark) &&
         opt_bool(env, opts, "reuseport", &o->reuseport) &&
         opt_bool(env, opts, "reuseaddr", &o->reuseaddr) &&
         opt_bool(env, opts, "transparent", &o->transparent) &&
         opt_bool(env, opts, "freebind", &o->freebind) &&
         opt_bool(env, opts, "nonblocking", &o->nonblocking);
}

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : errno;
}

// Applies the options; returns 0 or an errno with *failed naming the option.
static int apply_socket_opts(int fd, int domain, const socket_opts_t *o, const char **failed) {
  int err;
  if (o->has_mark && (err = set_int_opt(fd, SOL_SOCKET, SO_MARK, (int)o->mark)) != 0) {
    *failed = "setsockopt(SO_MARK)";
    return err;
  }
  if (o->reuseaddr && (err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1)) != 0) {
    *failed = "setsockopt(SO_REUSEADDR)";
    return err;
  }
  if (o->reuseport && (err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)) != 0) {
    *failed = "setsockopt(SO_REUSEPORT)";
    return err;
  }
  if (o->transparent) {
    err = domain == AF_INET6 ? set_int_opt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1)
                             : set_int_opt(fd, SOL_IP, IP_TRANSPARENT, 1);
    if (err != 0) {
      *failed = domain == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
      return err;
    }
  }
  if (o->freebind) {
    err = domain == AF_INET6 ? set_int_opt(fd, SOL_IPV6, IPV6_FREEBIND, 1)
                             : set_int_opt(fd, SOL_IP, IP_FREEBIND, 1);
    if (err != 0) {
      *failed = domain == AF_INET6 ? "setsockopt(IPV6_FREEBIND)" : "setsockopt(IP_FREEBIND)";
      return err;
    }
  }
  return 0;
}

// Names the netns in error messages ("netns fd 23", which PodNetns replaces with the path).
static void netns_subject(int netns_fd, char *buf, size_t size) {
  if (netns_fd >= 0) snprintf(buf, size, "netns fd %d", netns_fd);
  else snprintf(buf, size, "current netns");
}

// Creates a socket in the netns (or the current one for netns_fd < 0) with the options applied.
// Returns the fd, or -1 after throwing.
static int open_socket(napi_env env, int netns_fd, int domain, int type, const socket_opts_t *o) {
  int err = 0;
  const char *failed = NULL;
  char subject[64];
  netns_subject(netns_fd, subject, sizeof subject);
  int fd;
  if (!create_sockets(netns_fd, domain, type | (o->nonblocking ? SOCK_NONBLOCK : 0), &fd, 1, &err, &failed)) {
    throw_errno(env, err, failed, subject);
    return -1;
  }
  if ((err = apply_socket_opts(fd, domain, o, &failed)) != 0) {
    close(fd);
    throw_errno(env, err, failed, subject);
    return -1;
  }
  return fd;
}

// ---------------------------------------------------------------------------------------------------
// Exported functions

// openNetns(path) -> fd. Refuses files that are not network namespaces, so a wrong path fails here
// with a clear message instead of later inside setns().
static napi_value OpenNetns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_string(env, argv[0], "path", path, sizeof path)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", path);
  int nstype = ioctl(fd, NS_GET_NSTYPE);
  if (nstype != CLONE_NEWNET) {
    int err = nstype < 0 ? errno : 0;
    close(fd);
    char message[4200];
    snprintf(message, sizeof message, "openNetns(%s): not a network namespace%s%s", path,
             err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
    throw_error(env, "EINVAL", "openNetns", message);
    return NULL;
  }
  return make_int(env, fd);
}

// closeFd(fd)
static napi_value CloseFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  char subject[32];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (close(fd) != 0) {
    snprintf(subject, sizeof subject, "fd %d", fd);
    return throw_errno(env, errno, "close", subject);
  }
  return NULL;
}

static bool family_arg(napi_env env, napi_value value, int *domain) {
  int32_t family;
  if (!arg_int32(env, value, "family", &family)) return false;
  if (family != 4 && family != 6) {
    throw_invalid(env, "family must be 4 or 6");
    return false;
  }
  *domain = family == 4 ? AF_INET : AF_INET6;
  return true;
}

// socketInNetns(netnsFd | -1, family 4|6, type 'tcp'|'udp', {mark, reuseport, reuseaddr, transparent,
// freebind, nonblocking}?) -> fd
static napi_value SocketInNetns(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t netns_fd;
  int domain;
  char type_name[8];
  socket_opts_t o;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_invalid(env, "socketInNetns(netnsFd, family, type, opts?)");
  if (!arg_int32(env, argv[0], "netnsFd", &netns_fd) || !family_arg(env, argv[1], &domain) ||
      !arg_string(env, argv[2], "type", type_name, sizeof type_name) ||
      !read_socket_opts(env, opts_arg(env, argc, argv, 3), &o))
    return NULL;
  int type;
  if (strcmp(type_name, "tcp") == 0) type = SOCK_STREAM;
  else if (strcmp(type_name, "udp") == 0) type = SOCK_DGRAM;
  else return throw_invalid(env, "type must be 'tcp' or 'udp'");
  int fd = open_socket(env, netns_fd, domain, type, &o);
  return fd < 0 ? NULL : make_int(env, fd);
}

// Shared by listenTcp and bindUdp: (netnsFd, host, port, opts?) -> a bound, non-blocking socket of
// `type` in the netns, options applied; for TCP also listening. Returns the fd or -1 after throwing.
static int open_bound(napi_env env, napi_callback_info info, const char *fn, int type) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t netns_fd, port;
  char host[64], where[96], message[160];
  uint32_t backlog = DEFAULT_BACKLOG;
  bool has_backlog;
  socket_opts_t o;
  address_t addr;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    snprintf(message, sizeof message, "%s(netnsFd, host, port, opts?)", fn);
    throw_invalid(env, message);
    return -1;
  }
  napi_value opts = opts_arg(env, argc, argv, 3);
  if (!arg_int32(env, argv[0], "netnsFd", &netns_fd) ||
      !arg_string(env, argv[1], "host", host, sizeof host) ||
      !arg_int32(env, argv[2], "port", &port) || !read_socket_opts(env, opts, &o) ||
      !opt_uint32(env, opts, "backlog", &backlog, &has_backlog))
    return -1;
  if (!has_backlog) backlog = DEFAULT_BACKLOG;
  if (!parse_address(host, port, &addr)) {
    snprintf(message, sizeof message, "%s: '%s' port %d is not an IP address and port", fn, host, port);
    throw_invalid(env, message);
    return -1;
  }
  format_hostport(host, port, where, sizeof where);
  o.nonblocking = true;
  int fd = open_socket(env, netns_fd, addr.family, type, &o);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&addr.storage, addr.len) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "bind", where);
    return -1;
  }
  if (type == SOCK_STREAM && listen(fd, (int)backlog) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "listen", where);
    return -1;
  }
  return fd;
}

// listenTcp(netnsFd | -1, host, port, {mark, backlog, reuseport, reuseaddr, transparent}?) -> fd,
// bound and listening. Node sets SO_REUSEADDR on its own listeners; pass reuseaddr to match.
static napi_value ListenTcp(napi_env env, napi_callback_info info) {
  int fd = open_bound(env, info, "listenTcp", SOCK_STREAM);
  return fd < 0 ? NULL : make_int(env, fd);
}

// bindUdp(netnsFd | -1, host, port, {mark, reuseport, reuseaddr, transparent}?) -> bound UDP fd, for
// dgram.Socket#bind({fd}) (which adopts the fd but cannot bind it).
static napi_value BindUdp(napi_env env, napi_callback_info info) {
  int fd = open_bound(env, info, "bindUdp", SOCK_DGRAM);
  return fd < 0 ? NULL : make_int(env, fd);
}

#define MAX_SOCKET_BATCH 256

// tcpSockets(netnsFd | -1, family 4|6, count) -> [fd, ...]: `count` new TCP sockets in the netns, nothing
// set on them yet, for prepareConnect. Made in one helper-thread trip (see create_sockets).
static napi_value TcpSockets(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result, value;
  int32_t netns_fd, count;
  int domain, err = 0, fds[MAX_SOCKET_BATCH];
  const char *failed = NULL;
  char subject[64];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_invalid(env, "tcpSockets(netnsFd, family, count)");
  if (!arg_int32(env, argv[0], "netnsFd", &netns_fd) || !family_arg(env, argv[1], &domain) ||
      !arg_int32(env, argv[2], "count", &count))
    return NULL;
  if (count < 1 || count > MAX_SOCKET_BATCH) return throw_invalid(env, "tcpSockets: count must be 1..256");
  if (!create_sockets(netns_fd, domain, SOCK_STREAM, fds, count, &err, &failed)) {
    netns_subject(netns_fd, subject, sizeof subject);
    return throw_errno(env, err, failed, subject);
  }
  napi_create_array_with_length(env, (size_t)count, &result);
  for (int i = 0; i < count; i++) {
    napi_create_int32(env, fds[i], &value);
    napi_set_element(env, result, (uint32_t)i, value);
  }
  return result;
}

// prepareConnect(fd, family 4|6, {mark, bindHost, bindPort, transparent, freebind}?) -> fd: readies a socket
// from tcpSockets for an outgoing connection (options applied, bound when bindHost/bindPort is given). The fd
// is consumed: on failure it is closed before the error is thrown. The connect itself is left to
// net.Socket#connect on the adopted fd, so Node owns the whole connect (its 'connect' event, error with
// address, timeout) exactly as for its own sockets.
static napi_value PrepareConnect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int domain, err;
  const char *failed = NULL;
  socket_opts_t o;
  napi_value bind_host_value;
  bool has_bind_host, has_bind_port;
  uint32_t bind_port = 0;
  char bind_host[64], where[96], subject[32];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_invalid(env, "prepareConnect(fd, family, opts?)");
  napi_value opts = opts_arg(env, argc, argv, 2);
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!family_arg(env, argv[1], &domain) || !read_socket_opts(env, opts, &o) ||
      !opt_get(env, opts, "bindHost", &bind_host_value, &has_bind_host) ||
      !opt_uint32(env, opts, "bindPort", &bind_port, &has_bind_port)) {
    close(fd);
    return NULL;
  }
  address_t addr;
  if (has_bind_host || has_bind_port) {
    if (has_bind_host) {
      if (!arg_string(env, bind_host_value, "bindHost", bind_host, sizeof bind_host)) {
        close(fd);
        return NULL;
      }
    } else {
      snprintf(bind_host, sizeof bind_host, "%s", domain == AF_INET ? "0.0.0.0" : "::");
    }
    if (!parse_address(bind_host, (int)bind_port, &addr) || addr.family != domain) {
      char message[160];
      snprintf(message, sizeof message, "prepareConnect: bindHost '%s' port %u is not an IPv%d address and port",
               bind_host, bind_port, domain == AF_INET ? 4 : 6);
      close(fd);
      return throw_invalid(env, message);
    }
  }
  if ((err = apply_socket_opts(fd, domain, &o, &failed)) != 0) {
    close(fd);
    snprintf(subject, sizeof subject, "fd %d", fd);
    return throw_errno(env, err, failed, subject);
  }
  if (has_bind_host || has_bind_port) {
    format_hostport(bind_host, (int)bind_port, where, sizeof where);
    // Binding an address with port 0 would pick the port now, from ports free for *any* destination; with many
    // connections in TIME_WAIT that search gets slow and can run dry. Deferred to connect(), the port only has to
    // be unique for the full 4-tuple (best effort: an old kernel without the option binds as before).
    if (bind_port == 0) set_int_opt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
    if (bind(fd, (struct sockaddr *)&addr.storage, addr.len) != 0) {
      err = errno;
      close(fd);
      return throw_errno(env, err, "bind", where);
    }
  }
  return make_int(env, fd);
}

// originalDst(fd) -> {address, port, family: 'IPv4' | 'IPv6'}: the destination before NAT REDIRECT,
// from conntrack. IPv4 connections (including v4-mapped ones on an IPv6 socket) use SO_ORIGINAL_DST,
// IPv6 ones IP6T_SO_ORIGINAL_DST.
static napi_value OriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  char subject[32], text[INET6_ADDRSTRLEN];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  snprintf(subject, sizeof subject, "fd %d", fd);

  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return throw_errno(env, errno, "getsockname", subject);
  bool ipv4 = local.ss_family == AF_INET ||
              (local.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr));

  const char *family;
  int port;
  if (ipv4) {
    struct sockaddr_in dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)", subject);
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    port = ntohs(dst.sin_port);
    family = "IPv4";
  } else {
    struct sockaddr_in6 dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, errno, "getsockopt(IP6T_SO_ORIGINAL_DST)", subject);
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    port = ntohs(dst.sin6_port);
    family = "IPv6";
  }
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "address", value);
  napi_set_named_property(env, result, "port", make_int(env, port));
  napi_create_string_utf8(env, family, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "family", value);
  return result;
}

// setMark(fd, mark)
static napi_value SetMark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  uint32_t mark;
  char subject[32];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_invalid(env, "setMark(fd, mark)");
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &mark) != napi_ok) return throw_invalid(env, "mark must be a number");
  snprintf(subject, sizeof subject, "fd %d", fd);
  int err = set_int_opt(fd, SOL_SOCKET, SO_MARK, (int)mark);
  return err != 0 ? throw_errno(env, err, "setsockopt(SO_MARK)", subject) : NULL;
}

// getMark(fd) -> mark
static napi_value GetMark(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  uint32_t mark = 0;
  socklen_t len = sizeof mark;
  char subject[32];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  snprintf(subject, sizeof subject, "fd %d", fd);
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) != 0) return throw_errno(env, errno, "getsockopt(SO_MARK)", subject);
  napi_create_uint32(env, mark, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openNetns", NULL, OpenNetns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketInNetns", NULL, SocketInNetns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenTcp", NULL, ListenTcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindUdp", NULL, BindUdp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcpSockets", NULL, TcpSockets, NULL, NULL, NULL, napi_enumerable, NULL},
      {"prepareConnect", NULL, PrepareConnect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"originalDst", NULL, OriginalDst, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMark", NULL, SetMark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getMark", NULL, GetMark, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
