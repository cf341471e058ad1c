"""Seccomp: pouch's default profile (allow-list, ERRNO default) and loading `seccomp=FILE` profiles.

The default profile follows the shape of Docker's: everything is refused with EPERM unless
listed; syscalls that reach kernel-global state (keyctl, add_key, request_key, mount,
reboot, kexec_load, init_module, ...) are only allowed when the container holds the
capability that would let it use them anyway; clone with namespace flags needs CAP_SYS_ADMIN.
"""
import json
import os
import platform

from .errors import InvalidOciConfig

ARCH_MAP = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}
_ARCH_NAME = {"x86_64": "amd64", "aarch64": "arm64"}

# Allowed for every container.
_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat get_robust_list get_thread_area getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid
gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup
io_submit ioctl ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr
_llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max
sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32
setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr
shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev
""".split()

_ARCH_ONLY = {"x86_64": ["arch_prctl", "modify_ldt"], "aarch64": ["arm_fadvise64_64", "arm_sync_file_range",
                                                                   "sync_file_range2", "set_tls"]}

# Allowed only when the container holds the capability.
_BY_CAP = {
    "CAP_SYS_ADMIN": ["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                      "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
                      "umount", "umount2", "unshare"],
    "CAP_SYS_BOOT": ["reboot", "kexec_load", "kexec_file_load"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}

# Namespace flags clone() may not carry without CAP_SYS_ADMIN (NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET)
CLONE_NS_FLAGS = 0x7E020000
ENOSYS, EPERM = 38, 1


def default_profile(caps, arch: str | None = None) -> dict:
    """The default OCI `linux.seccomp` for a container holding `caps` on `arch` (host by default)."""
    arch = arch or platform.machine()
    caps = set(caps)
    syscalls = [{"names": sorted(set(_ALLOWED + _ARCH_ONLY.get(arch, []))), "action": "SCMP_ACT_ALLOW"},
                # personality: only the harmless personas (Linux, UNAME26, READ_IMPLIES_EXEC-less queries)
                *({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
                  for v in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF))]
    granted = set()
    for cap, names in _BY_CAP.items():
        if cap in caps:
            granted.update(names)
    if granted:
        syscalls.append({"names": sorted(granted), "action": "SCMP_ACT_ALLOW"})
    if "CAP_SYS_ADMIN" not in caps:
        # plain clone (threads, fork) is fine; with namespace flags it is refused
        syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0,
                                   "op": "SCMP_CMP_MASKED_EQ"}]})
        # clone3 passes flags in a struct seccomp cannot read: ENOSYS makes libc fall back to clone
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM,
            "architectures": ARCH_MAP.get(arch, []), "syscalls": syscalls}


def _applies(rule: dict, caps: set, arch: str) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    arch_names = {arch, _ARCH_NAME.get(arch, arch)}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and not arch_names & set(inc["arches"]):
        return False
    if inc.get("minKernel") and _kernel() < _version(inc["minKernel"]):
        return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    if exc.get("arches") and arch_names & set(exc["arches"]):
        return False
    return True


def _version(text: str) -> tuple:
    parts = []
    for p in text.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _kernel() -> tuple:
    return _version(os.uname().release)


def from_docker(profile: dict, caps, arch: str | None = None) -> dict:
    """A Docker-format seccomp profile (archMap, includes/excludes) -> OCI `linux.seccomp`."""
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidOciConfig("seccomp profile has no defaultAction")
    arch = arch or platform.machine()
    caps = set(caps)
    arches = profile.get("architectures") or []
    native = ARCH_MAP.get(arch, [None])[0]
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            arches = [native] + list(entry.get("subArchitectures") or [])
    out = {"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": []}
    for key in ("defaultErrnoRet", "listenerPath", "listenerMetadata", "flags"):
        if key in profile:
            out[key] = profile[key]
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, caps, arch):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names or "action" not in rule:
            raise InvalidOciConfig(f"seccomp rule without names or action: {rule}")
        item = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            item["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a} for a in rule["args"]]
        if rule.get("errnoRet") is not None:
            item["errnoRet"] = rule["errnoRet"]
        out["syscalls"].append(item)
    return out


def load_profile(value: str, caps, arch: str | None = None) -> dict | None:
    """`--security-opt seccomp=VALUE`: 'unconfined' -> None, else a Docker JSON file (or JSON text)."""
    if value == "unconfined":
        return None
    text = value
    if not value.lstrip().startswith("{"):
        try:
            with open(value) as f:
                text = f.read()
        except OSError as e:
            raise InvalidOciConfig(f"cannot read seccomp profile {value}: {e.strerror}") from None
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidOciConfig(f"seccomp profile {value} is not valid JSON: {e}") from None
    return from_docker(profile, caps, arch)


def supported() -> bool:
    """True when the kernel offers seccomp filters (a Seccomp: line in /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False
