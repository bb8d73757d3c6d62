"""The seccomp filter every sandboxed program runs under: compiled once to BPF for the
process backend, and as a Docker profile (``docker_profile``) for the Docker backend, so
both backends refuse the same calls.

Default allow, with EPERM for calls an unprivileged program has no business making
and that widen the kernel attack surface or escape the namespaces (new namespaces,
mounts, ptrace, keyrings, bpf, io_uring, module loading...). clone3 answers ENOSYS so
libc falls back to clone, whose flags we can inspect. Sockets: unix, IPv4 and IPv6 only
(every other family is kernel surface, and state we could not see in sockstat). Only the
native ABI: 32-bit calls (int 0x80) would bypass the argument checks. Stdlib only.
"""
from __future__ import annotations

import errno
import json
import os
from types import ModuleType

DENY = (
    "ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd "
    "mount umount2 pivot_root chroot move_mount open_tree fsopen fsmount fspick mount_setattr "
    "unshare setns keyctl add_key request_key bpf perf_event_open userfaultfd "
    "kexec_load kexec_file_load init_module finit_module delete_module reboot swapon swapoff "
    "syslog acct settimeofday clock_settime clock_adjtime adjtimex open_by_handle_at "
    "name_to_handle_at quotactl lookup_dcookie vhangup iopl ioperm uselib personality "
    "io_uring_setup io_uring_enter io_uring_register sethostname setdomainname "
    "fanotify_init mbind migrate_pages move_pages set_mempolicy "
    # what Docker's default profile refuses too, so its profile loses nothing by being replaced with ours
    "create_module get_kernel_syms query_module nfsservctl sysfs _sysctl ustat vm86 vm86old stime"
).split()
# Namespace flags in clone(2)'s first argument.
_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
# Socket families allowed: AF_UNIX, AF_INET, AF_INET6; the rest answer EAFNOSUPPORT.
_ALLOWED_FAMILIES = (1, 2, 10)
_FIRST_DENIED_ABOVE = 11
_DENY_FAMILIES = tuple(f for f in range(_FIRST_DENIED_ABOVE) if f not in _ALLOWED_FAMILIES)
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C


def build_bpf(seccomp: ModuleType) -> bytes:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    eperm = seccomp.ERRNO(errno.EPERM)
    for name in DENY:
        try:
            f.add_rule(eperm, name)
        except Exception:  # syscall unknown to this libseccomp/arch: nothing to block
            pass
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for bit in range(32):
        if _NS_FLAGS & (1 << bit):
            f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, 1 << bit, 1 << bit))
    for call in ("socket", "socketpair"):
        f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, seccomp.Arg(0, seccomp.GE, _FIRST_DENIED_ABOVE))
        for fam in _DENY_FAMILIES:
            f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, seccomp.Arg(0, seccomp.EQ, fam))
    for req in (_TIOCSTI, _TIOCLINUX):
        f.add_rule(eperm, "ioctl", seccomp.Arg(1, seccomp.EQ, req))
    fd = os.memfd_create("budgetflow-seccomp")
    try:
        f.export_bpf(_Fd(fd))
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def docker_profile() -> str:
    """The same rules as a Docker seccomp profile (JSON, for ``security_opt=["seccomp=..."]``)."""
    def deny(names: list[str], err: int, *args: dict) -> dict:
        return {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": err, "args": list(args)}

    def arg(index: int, op: str, value: int, value_two: int = 0) -> dict:
        return {"index": index, "op": op, "value": value, "valueTwo": value_two}

    rules = [deny(DENY, errno.EPERM), deny(["clone3"], errno.ENOSYS)]
    rules += [deny(["clone"], errno.EPERM, arg(0, "SCMP_CMP_MASKED_EQ", 1 << b, 1 << b))
              for b in range(32) if _NS_FLAGS & (1 << b)]
    rules.append(deny(["socket", "socketpair"], errno.EAFNOSUPPORT, arg(0, "SCMP_CMP_GE", _FIRST_DENIED_ABOVE)))
    rules += [deny(["socket", "socketpair"], errno.EAFNOSUPPORT, arg(0, "SCMP_CMP_EQ", fam))
              for fam in _DENY_FAMILIES]
    rules += [deny(["ioctl"], errno.EPERM, arg(1, "SCMP_CMP_EQ", req)) for req in (_TIOCSTI, _TIOCLINUX)]
    return json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                       "syscalls": rules})


class _Fd:
    """export_bpf only wants something with fileno()."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd
