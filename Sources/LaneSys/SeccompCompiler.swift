import CLaneSys
import CSeccomp
import Glibc
import LaneModel

/// Compiles a profile's seccomp section into a BPF program with libseccomp, once per profile.
public enum SeccompCompiler {
    // libseccomp's SCMP_ACT_* are macros Swift cannot import.
    static let actAllow: UInt32 = 0x7fff_0000
    static let actKillProcess: UInt32 = 0x8000_0000
    static func actErrno(_ e: Int32) -> UInt32 { 0x0005_0000 | (UInt32(e) & 0xffff) }

    /// The compiled program: `struct sock_filter` records, 8 bytes each.
    public static func compile(_ policy: Profile.Seccomp) throws(LanesError) -> [UInt8] {
        let defaultAction = policy.defaultAction == .kill ? actKillProcess : actErrno(EPERM)
        guard let ctx = seccomp_init(defaultAction) else {
            throw LanesError(.setupFailed, stage: "seccomp", "seccomp_init failed")
        }
        defer { seccomp_release(ctx) }
        // Foreign ABIs (i386 via int 0x80, x32) are not in the filter: kill on sight.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, actKillProcess)
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)  // lane_seal_and_exec sets it
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)  // binary tree, not a long chain

        let denied = Set(policy.deny)
        var allowed = Set(SyscallPolicy.baseAllow).union(policy.allow).subtracting(denied)
        for name in policy.allow where SyscallPolicy.never.contains(name) {
            throw LanesError(.invalidConfig, stage: "seccomp", "syscall '\(name)' cannot be allowed: it is on the never list")
        }
        allowed.subtract(SyscallPolicy.never)
        for name in policy.allow + policy.deny where try number(name) < 0 {
            throw LanesError(.invalidConfig, stage: "seccomp", "unknown syscall '\(name)'")
        }
        for name in allowed.sorted() { try add(ctx, actAllow, name) }
        // Denied names are simply left out of the allow-list: the default action covers them.

        if !denied.contains("clone") {
            try add(ctx, actAllow, "clone", [cmp(0, SCMP_CMP_MASKED_EQ, SyscallPolicy.cloneNamespaceMask, 0)])
        }
        try add(ctx, actErrno(ENOSYS), "clone3")
        if !denied.contains("socket") {
            for family in SyscallPolicy.socketFamilies { try add(ctx, actAllow, "socket", [cmp(0, SCMP_CMP_EQ, family)]) }
        }
        if !denied.contains("socketpair") { try add(ctx, actAllow, "socketpair", [cmp(0, SCMP_CMP_EQ, 1)]) }
        if !denied.contains("personality") {
            for value in SyscallPolicy.safePersonalities { try add(ctx, actAllow, "personality", [cmp(0, SCMP_CMP_EQ, value)]) }
        }
        if !denied.contains("ioctl") {
            // Compared on the low 32 bits, so high bits set in the request do not slip past.
            try add(ctx, actAllow, "ioctl")
            for request in SyscallPolicy.deniedIoctls {
                // EACCES, not EPERM: libseccomp refuses a rule whose action equals the default.
                try add(ctx, actErrno(EACCES), "ioctl", [cmp(1, SCMP_CMP_MASKED_EQ, 0xffff_ffff, request)])
            }
        }
        return try export(ctx)
    }

    static func number(_ name: String) throws(LanesError) -> Int32 {
        seccomp_syscall_resolve_name(name)
    }

    private static func cmp(_ arg: UInt32, _ op: scmp_compare, _ a: UInt64, _ b: UInt64 = 0) -> scmp_arg_cmp {
        scmp_arg_cmp(arg: arg, op: op, datum_a: a, datum_b: b)
    }

    private static func add(_ ctx: scmp_filter_ctx, _ action: UInt32, _ name: String, _ args: [scmp_arg_cmp] = []) throws(LanesError) {
        let nr = seccomp_syscall_resolve_name(name)
        // A name this libseccomp does not know on this arch is skipped only for the base list.
        if nr < 0 { return }
        let rc = args.withUnsafeBufferPointer { seccomp_rule_add_array(ctx, action, nr, UInt32($0.count), $0.baseAddress) }
        if rc != 0 {
            throw LanesError(.setupFailed, stage: "seccomp", errno: -rc, "cannot add rule for '\(name)': \(String(cString: strerror(-rc)))")
        }
    }

    /// libseccomp 2.5 can only export to an fd: write to a memfd and read it back.
    private static func export(_ ctx: scmp_filter_ctx) throws(LanesError) -> [UInt8] {
        let fd = lane_memfd_create("lanes-seccomp", UInt32(LANE_MFD_CLOEXEC))
        guard fd >= 0 else { throw LanesError(.setupFailed, stage: "seccomp", errno: errno, "memfd_create failed") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw LanesError(.setupFailed, stage: "seccomp", errno: -rc, "seccomp_export_bpf failed") }
        let size = Int(lseek(fd, 0, SEEK_END))
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size else { throw LanesError(.setupFailed, stage: "seccomp", errno: errno, "reading the exported filter failed") }
        return bytes
    }
}

extension SeccompCompiler {
    /// Whether libseccomp knows the syscall name on this architecture.
    public static func isKnown(_ name: String) -> Bool { seccomp_syscall_resolve_name(name) >= 0 }
}
