import CLaneSys
import CSeccomp
import Glibc
import LaneModel
import LanePlan
import LaneSyscall

/// Compiles a profile's seccomp section into a BPF program with libseccomp, once per profile.
public enum SeccompCompiler {
    // libseccomp's SCMP_ACT_* are macros Swift cannot import.
    static let actAllow: UInt32 = 0x7fff_0000
    static let actKillProcess: UInt32 = 0x8000_0000
    /// SCMP_ACT_NOTIFY: the call waits for PID 1 of the sandbox, which records it and answers
    /// with an error (lane-init's `DenialRecorder`). Only refused calls reach it; allowed calls
    /// never leave the BPF program, so they cost what they cost before.
    static let actNotify: UInt32 = 0x7fc0_0000
    static func actErrno(_ e: Int32) -> UInt32 { 0x0005_0000 | (UInt32(e) & 0xffff) }
    /// The stage compile failures are reported under (`lane_stages.h`).
    static let stage = SetupStage(LANE_STAGE_SECCOMP).name

    /// The compiled program: `struct sock_filter` records, 8 bytes each.
    public static func compile(_ policy: Profile.Seccomp) throws(LanesError) -> [UInt8] {
        // errno mode: every refused call is answered EPERM by PID 1, which records it (denials).
        let defaultAction = policy.defaultAction == .kill ? actKillProcess : actNotify
        guard let ctx = seccomp_init(defaultAction) else {
            throw LanesError(.setupFailed, stage: stage, "seccomp_init failed")
        }
        defer { seccomp_release(ctx) }
        // Foreign ABIs (i386 via int 0x80, x32) are not in the filter: kill on sight.
        // A protection: a filter without it would let foreign-ABI syscalls through unchecked.
        let badArch = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, actKillProcess)
        guard badArch == 0 else {
            throw LanesError(.setupFailed, stage: stage, errno: -badArch, "cannot make foreign architectures kill the step")
        }
        // Neither of these protects anything: NNP is only about loading (lane_seal_and_exec sets
        // no_new_privs itself) and an older libseccomp without the optimizer emits a linear list.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)  // binary tree, not a long chain

        let denied = Set(policy.deny)
        var allowed = Set(SyscallPolicy.baseAllow).union(policy.allow).subtracting(denied)
        // The parser (LaneConfig) already refuses these with FILE:LINE, from the same rules
        // (LaneModel.SeccompRules); this is the last line for a profile built in code.
        if let problem = SeccompRules.problems(allow: policy.allow, deny: policy.deny, known: isKnown).first {
            throw LanesError(.invalidConfig, stage: stage, "seccomp.\(problem.key): \(problem.message)")
        }
        allowed.subtract(SyscallPolicy.never)
        // Conditional below; an unconditional allow would make libseccomp drop the conditions.
        allowed.subtract(SyscallPolicy.modeArguments.map(\.name) + ["openat2"])
        for name in allowed.sorted() { try add(ctx, actAllow, name) }
        // Denied names are simply left out of the allow-list: the default action covers them.

        if !denied.contains("clone") {
            try add(ctx, actAllow, "clone", [cmp(0, SCMP_CMP_MASKED_EQ, SyscallPolicy.cloneNamespaceMask, 0)])
        }
        try add(ctx, actErrno(ENOSYS), "clone3")
        try add(ctx, actErrno(ENOSYS), "openat2")
        // Mode-setting calls: allowed without S_ISUID/S_ISGID, refused (EPERM, recorded) with
        // either, in both modes: a set-id file must never be left on a host-visible path.
        for (name, index) in SyscallPolicy.modeArguments where !denied.contains(name) {
            try add(ctx, actAllow, name, [cmp(index, SCMP_CMP_MASKED_EQ, SyscallPolicy.setidBits, 0)])
            if defaultAction != actNotify {
                try add(ctx, actNotify, name, [cmp(index, SCMP_CMP_MASKED_EQ, 0o4000, 0o4000)])
                try add(ctx, actNotify, name, [cmp(index, SCMP_CMP_MASKED_EQ, 0o2000, 0o2000)])
            }
        }
        if !denied.contains("socket") {
            for family in SyscallPolicy.socketFamilies { try add(ctx, actAllow, "socket", [cmp(0, SCMP_CMP_EQ, family)]) }
        }
        if !denied.contains("socketpair") { try add(ctx, actAllow, "socketpair", [cmp(0, SCMP_CMP_EQ, 1)]) }
        if !denied.contains("personality") {
            for value in SyscallPolicy.safePersonalities { try add(ctx, actAllow, "personality", [cmp(0, SCMP_CMP_EQ, value)]) }
        }
        if !denied.contains("ioctl") { try add(ctx, actAllow, "ioctl") }
        // The denied ioctls are a hand-written prefix, not libseccomp rules: libseccomp drops
        // conditional rules of a syscall that also has an unconditional one, so an "allow ioctl"
        // plus "EACCES for TIOCSTI" pair let TIOCSTI through (found by Tests/EscapeTests).
        return ioctlDenyPrefix() + (try export(ctx))
    }

    /// BPF that returns EACCES for ioctl(fd, request) when the low 32 bits of `request` are one
    /// of `SyscallPolicy.deniedIoctls` (the kernel truncates the request to 32 bits, so high bits
    /// must not slip past), and otherwise falls through to the libseccomp program that follows.
    /// Only the native arch is matched here; other arches fall through to its BADARCH kill.
    static func ioctlDenyPrefix() -> [UInt8] {
        let nr = seccomp_syscall_resolve_name("ioctl")
        guard nr >= 0 else { return [] }
        let requests = SyscallPolicy.deniedIoctls
        let n = requests.count
        // Layout: 0 ld arch, 1 jeq native, 2 ld nr, 3 jeq ioctl, 4 ld args[1] low word,
        // 5..<5+n jeq request, 5+n ret EACCES, 6+n = the libseccomp program.
        let deny = 5 + n, next = 6 + n
        var insns: [(UInt16, UInt8, UInt8, UInt32)] = [
            (ldAbs, 0, 0, 4), (jeq, 0, UInt8(next - 2), seccomp_arch_native()),
            (ldAbs, 0, 0, 0), (jeq, 0, UInt8(next - 4), UInt32(bitPattern: nr)),
            (ldAbs, 0, 0, 24),  // struct seccomp_data: args[1] at 24, low word first (little endian)
        ]
        for (i, request) in requests.enumerated() {
            let index = 5 + i
            insns.append((jeq, UInt8(deny - index - 1), i == n - 1 ? 1 : 0, UInt32(truncatingIfNeeded: request)))
        }
        insns.append((ret, 0, 0, actErrno(EACCES)))
        var bytes: [UInt8] = []
        for (code, jt, jf, k) in insns {
            bytes += [UInt8(code & 0xff), UInt8(code >> 8), jt, jf]
            bytes += [UInt8(k & 0xff), UInt8((k >> 8) & 0xff), UInt8((k >> 16) & 0xff), UInt8(k >> 24)]
        }
        return bytes
    }

    // Classic BPF opcodes (linux/filter.h macros Swift cannot import).
    private static let ldAbs: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    private static let jeq: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    private static let ret: UInt16 = 0x06  // BPF_RET | BPF_K

    private static func cmp(_ arg: UInt32, _ op: scmp_compare, _ a: UInt64, _ b: UInt64 = 0) -> scmp_arg_cmp {
        scmp_arg_cmp(arg: arg, op: op, datum_a: a, datum_b: b)
    }

    private static func add(_ ctx: scmp_filter_ctx, _ action: UInt32, _ name: String, _ args: [scmp_arg_cmp] = []) throws(LanesError) {
        let nr = seccomp_syscall_resolve_name(name)
        // A name this libseccomp does not know on this arch is skipped only for the base list.
        if nr < 0 { return }
        let rc = args.withUnsafeBufferPointer { seccomp_rule_add_array(ctx, action, nr, UInt32($0.count), $0.baseAddress) }
        if rc != 0 {
            throw LanesError(.setupFailed, stage: stage, errno: -rc, "cannot add rule for '\(name)': \(String(cString: strerror(-rc)))")
        }
    }

    /// libseccomp 2.5 can only export to an fd: write to a memfd and read it back.
    private static func export(_ ctx: scmp_filter_ctx) throws(LanesError) -> [UInt8] {
        let raw = lane_memfd_create("lanes-seccomp", UInt32(LANE_MFD_CLOEXEC))
        guard raw >= 0 else { throw LanesError(.setupFailed, stage: stage, errno: errno, "memfd_create failed") }
        let owned = OwnedDescriptor(adopting: raw)
        let fd = owned.raw
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw LanesError(.setupFailed, stage: stage, errno: -rc, "seccomp_export_bpf failed") }
        let size = Int(lseek(fd, 0, SEEK_END))
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size else { throw LanesError(.setupFailed, stage: stage, errno: errno, "reading the exported filter failed") }
        return bytes
    }
}

extension SeccompCompiler {
    /// Whether libseccomp knows the syscall name on this architecture.
    public static func isKnown(_ name: String) -> Bool { seccomp_syscall_resolve_name(name) >= 0 }

    /// The name of native syscall `nr` ("nr N" when libseccomp does not know it).
    public static func name(of nr: Int32) -> String {
        guard let p = seccomp_syscall_resolve_num_arch(0, nr) else { return "nr \(nr)" }
        defer { free(p) }
        return String(cString: p)
    }
}
