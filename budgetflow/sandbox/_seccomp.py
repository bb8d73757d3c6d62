"""The seccomp filter every sandboxed program runs under, compiled once to BPF.

Default allow, with EPERM for calls an unprivileged program has no business making
and that widen the kernel attack surface or escape the namespaces (new namespaces,
mounts, ptrace, keyrings, bpf, io_uring, module loading...). clone3 answers ENOSYS so
libc falls back to clone, whose flags we can inspect. Helper-side module.
"""
from __future__ import annotations

import errno
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
    "fanotify_init mbind migrate_pages move_pages set_mempolicy"
).split()
# Namespace flags in clone(2)'s first argument.
_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
# Socket families that have no use in a sandbox (netlink, packet, key, alg, vsock, xdp, ...).
_DENY_FAMILIES = (15, 16, 17, 21, 29, 38, 40, 41, 42, 44)
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
    for fam in _DENY_FAMILIES:
        f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, fam))
    for req in (_TIOCSTI, _TIOCLINUX):
        f.add_rule(eperm, "ioctl", seccomp.Arg(1, seccomp.EQ, req))
    fd = os.memfd_create("budgetflow-seccomp")
    try:
        f.export_bpf(_Fd(fd))
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


class _Fd:
    """export_bpf only wants something with fileno()."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd
