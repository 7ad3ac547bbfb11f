import Foundation
import Glibc
import LaneTestSupport
import Testing

/// One action of the `syscalls` probe (Probes/syscalls.c) and how the sandbox must refuse it.
struct Forbidden: Sendable, CustomStringConvertible {
    /// What the host control must show.
    enum Control: Sendable {
        /// The action works on the host (as root when `rootOnly`).
        case succeeds(rootOnly: Bool)
        /// The action may fail on the host too (a module or a sysctl), but never with the
        /// sandbox's errno: the errno inside then comes from the sandbox, not the host.
        case differs
        /// No host control; the reason is the argument.
        case none(String)
    }

    let action: String
    /// The errno the step must get.
    let inside: Int32
    let control: Control
    /// The control runs in a fresh user + mount namespace of its own (`--in-userns`), so that
    /// mount-family calls can succeed without touching the host's mounts.
    var inUserNamespace = false

    /// The name the probe prints (the action without its "=ARG").
    var key: String { String(action.prefix { $0 != "=" }) }
    var description: String { action }
}

/// The system-call escape classes: nested namespaces, tracing, the mount family, the kernel
/// interfaces of §3's never list, socket families and terminal injection, plus the alternate
/// x86 ABIs. Each case runs the same probe on the host (control) and inside the sandbox.
@Suite("Escape: forbidden system calls")
struct SyscallEscapeTests {
    /// Runs `cases` on the host and inside a step as `identity`, and checks both.
    func check(_ cases: [Forbidden], as identity: LanesCLI.Identity) throws {
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let probe = ws + "/syscalls"
        let root = getuid() == 0

        // Control: the same binary on the host.
        for inUserns in [false, true] {
            let group = cases.filter { $0.inUserNamespace == inUserns && !isNone($0.control) }
            if group.isEmpty { continue }
            let host = try Escape.host(probe, (inUserns ? ["--in-userns"] : []) + group.map(\.action), cwd: ws)
            #expect(host.status == 0, "host control failed to run: \(host)")
            let seen = Escape.results(host.stdout)
            for c in group {
                guard let got = seen[c.key] else { Issue.record("control printed nothing for \(c.action): \(host)"); continue }
                #expect(got != c.inside, "control: \(c.action) already fails on the host with errno \(got); the test could not fail")
                if case let .succeeds(rootOnly) = c.control, root || !rootOnly {
                    #expect(got == 0, "control: \(c.action) should work on the host, got errno \(got)")
                } else if case .succeeds = c.control {
                    print("NOTE: control of \(c.action) needs root; only checked that it fails differently")
                }
            }
        }

        // Inside the sandbox.
        let step = try Escape.step(identity, in: ws, [probe] + cases.map(\.action))
        #expect(step.status == 0, "the probe did not run to the end inside: \(step)")
        let seen = Escape.results(step.stdout)
        for c in cases {
            #expect(seen[c.key] == c.inside,
                    "\(c.action) inside: expected errno \(c.inside), got \(seen[c.key].map { $0 == 0 ? "success" : "errno \($0)" } ?? "nothing") (\(identity))")
        }
    }

    private func isNone(_ control: Forbidden.Control) -> Bool {
        if case .none = control { return true }
        return false
    }

    @Test("nested user namespaces via unshare, clone and raw clone3", arguments: Escape.identities)
    func nestedUserNamespaces(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        try check([
            Forbidden(action: "unshare_user", inside: EPERM, control: .succeeds(rootOnly: false)),
            Forbidden(action: "clone_user", inside: EPERM, control: .succeeds(rootOnly: false)),
            // ENOSYS, not EPERM: libc then falls back to clone, whose flags are checked.
            Forbidden(action: "clone3_user", inside: ENOSYS, control: .succeeds(rootOnly: false)),
        ], as: identity)
    }

    @Test("ptrace and process_vm_readv of another process", arguments: Escape.identities)
    func tracing(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        // Processes outside the sandbox have no pid inside it, so the probe targets what it can
        // name: a child of its own (the strongest case: same uid, a descendant) and PID 1.
        let pid1 = "PID 1 inside is lane-init; on the host it is init, which a test must not attach to"
        try check([
            Forbidden(action: "ptrace_child", inside: EPERM, control: .succeeds(rootOnly: false)),
            Forbidden(action: "vm_readv_child", inside: EPERM, control: .succeeds(rootOnly: false)),
            Forbidden(action: "ptrace=1", inside: EPERM, control: .none(pid1)),
            Forbidden(action: "vm_readv=1", inside: EPERM, control: .none(pid1)),
        ], as: identity)
    }

    @Test("mount, umount, pivot_root, chroot and the new mount API", arguments: Escape.identities)
    func mountFamily(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let actions = ["mount", "umount", "pivot_root", "chroot", "fsopen", "open_tree"]
        try check(actions.map { Forbidden(action: $0, inside: EPERM, control: .succeeds(rootOnly: false), inUserNamespace: true) },
                  as: identity)
    }

    @Test("io_uring, userfaultfd, bpf, perf_event_open, keyctl, open_by_handle_at", arguments: Escape.identities)
    func kernelInterfaces(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        try check([
            Forbidden(action: "io_uring_setup", inside: EPERM, control: .differs),  // io_uring_disabled may be set
            Forbidden(action: "userfaultfd", inside: EPERM, control: .succeeds(rootOnly: false)),
            Forbidden(action: "bpf", inside: EPERM, control: .succeeds(rootOnly: true)),
            Forbidden(action: "perf_event_open", inside: EPERM, control: .differs),  // perf_event_paranoid may be 3
            Forbidden(action: "keyctl", inside: EPERM, control: .succeeds(rootOnly: false)),
            Forbidden(action: "open_by_handle_at", inside: EPERM, control: .succeeds(rootOnly: true)),
        ], as: identity)
    }

    @Test("AF_ALG, AF_VSOCK, AF_PACKET, netlink and raw sockets", arguments: Escape.identities)
    func socketFamilies(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        try check([
            // AF_ALG and AF_VSOCK depend on kernel modules: the host may say EAFNOSUPPORT.
            Forbidden(action: "af_alg", inside: EPERM, control: .differs),
            Forbidden(action: "af_vsock", inside: EPERM, control: .differs),
            Forbidden(action: "af_packet", inside: EPERM, control: .succeeds(rootOnly: true)),
            Forbidden(action: "af_netlink", inside: EPERM, control: .succeeds(rootOnly: false)),
            // AF_INET is allowed; SOCK_RAW still needs CAP_NET_RAW, which the step lacks.
            Forbidden(action: "raw_inet", inside: EPERM, control: .succeeds(rootOnly: true)),
        ], as: identity)
    }

    @Test("TIOCSTI and TIOCLINUX, also with high bits set in the request", arguments: Escape.identities)
    func terminalInjection(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        // On the host TIOCSTI works on the probe's own pty (as root, or with legacy_tiocsti);
        // TIOCLINUX reaches the tty layer and fails with ENOTTY on a pty: either way not EACCES,
        // the errno only the seccomp filter returns.
        let tiocsti: Forbidden.Control = Escape.readTrimmed("/proc/sys/dev/tty/legacy_tiocsti") == "0" ? .succeeds(rootOnly: true) : .succeeds(rootOnly: false)
        try check([
            Forbidden(action: "tiocsti", inside: EACCES, control: tiocsti),
            Forbidden(action: "tiocsti_high", inside: EACCES, control: tiocsti),
            Forbidden(action: "tioclinux", inside: EACCES, control: .differs),
            Forbidden(action: "tioclinux_high", inside: EACCES, control: .differs),
        ], as: identity)
    }

    @Test("core dumps are off and the core limit cannot be raised", arguments: Escape.identities)
    func coreDumps(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        // The host control dumps core only where core_pattern writes a file and the hard limit
        // allows it; as root the hard limit can always be raised.
        let pattern = Escape.readTrimmed("/proc/sys/kernel/core_pattern") ?? ""
        let dumpControl: Forbidden.Control = pattern.hasPrefix("|") || pattern.isEmpty
            ? .none("core_pattern pipes to a helper") : .succeeds(rootOnly: true)
        try check([
            Forbidden(action: "core_limit", inside: EPERM, control: .succeeds(rootOnly: true)),
            Forbidden(action: "core_dump", inside: EPERM, control: dumpControl),
        ], as: identity)
    }

    @Test("x32 syscall numbers and int 0x80 kill the step", arguments: Escape.identities, ["x32", "int80"])
    func alternateABIs(_ identity: LanesCLI.Identity, abi: String) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        // Control: on the host the call returns (a pid, or ENOSYS where the kernel lacks the ABI).
        let host = try Escape.host(ws + "/abi", [abi])
        #expect(host.status == 0 && host.stdout.hasPrefix(abi + " "), "control: \(host)")
        let step = try Escape.step(identity, in: ws, [ws + "/abi", abi])
        #expect(step.status == 128 + SIGSYS, "\(abi) inside must be killed by SIGSYS: \(step)")
        #expect(step.stdout.isEmpty, "the probe must not get past the call: \(step)")
    }
}
