import Foundation
import ArgumentParser
import Glibc
import LaneConfig
import LaneModel
import LaneRuntime
import LaneSupervisor
import LaneSys

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Probe the host and say, for each profile, whether it can run here.",
        discussion: """
            Checks user namespaces, seccomp and its actions, the Landlock ABI, cgroups (the backend,
            the root in use and which controllers are writable), pidfd and clone3, then runs
            `/bin/true` as a real step in every profile found (the configured ones and those shipped
            with lanes) and resolves every lane's profile. Exit 0 when every profile can run here and
            every lane's profile exists and is valid, 1 otherwise; each FAIL names its reason.
            """)

    @OptionGroup var configOptions: ConfigOptions

    func run() throws {
        printOut("host (\(geteuid() == 0 ? "root" : "uid \(geteuid())"), kernel \(kernelRelease()))\n")
        let probes = HostProbe.all()
        for f in probes {
            printOut("  \(f.ok ? "ok  " : "FAIL") \(f.name.padding(16)) \(f.detail)\n")
            if let advice = f.advice, !f.ok { printOut("       → \(advice)\n") }
        }
        let overlay = WorkspaceChanges.overlayUnavailableReason()
        printOut("  \(overlay == nil ? "ok  " : "FAIL") \("overlay".padding(16)) \(overlay ?? "overlayfs in a user namespace (filesystem.commit = auto/review)")\n")
        // Proxy mode (docs/network.md): the fd channel and the supervisor's proxy. Profiles with
        // `mode = "proxy"` are also run below as real steps, which starts lane-init's listener.
        let egress = EgressProbe.probe()
        printOut("  \(egress == nil ? "ok  " : "FAIL") \("egress proxy".padding(16)) \(egress ?? "network mode \"proxy\" can run (loopback listener → supervisor proxy)")\n")
        // An overlay or egress FAIL is a host check too: a profile that then fails may point at it.
        let hostFailed = probes.contains { !$0.ok } || overlay != nil || egress != nil
        let cgroups = Cgroups.report()
        printOut("cgroups for step limits\n" + cgroups.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n")
        guard let store = Paths.locateConfig(configOptions.config),
              isDirectory(store.profilesDirectory) || isDirectory(store.lanesDirectory) else {
            let where_ = configOptions.config.map { " in \($0)" } ?? ""
            printOut("profiles: none found\(where_) (use --config DIR or LANES_CONFIG)\n")
            throw ExitCode(1)
        }
        var failures = 0
        let workspace = Paths.resolve("/tmp") ?? "/tmp"
        var roots = [(store, "\(store.profilesDirectory), \(store.origin)")]
        if let shipped = Paths.installedConfig, Paths.resolve(shipped) != Paths.resolve(store.root) {
            roots.append((ConfigStore(root: shipped, origin: "installed with lanes"), "\(shipped)/Profiles, shipped with lanes"))
        }
        for (root, title) in roots {
            printOut("profiles (\(title))\n")
            let names = root.profileNames()
            if names.isEmpty {
                failures += 1
                printOut("  FAIL no profiles in \(root.profilesDirectory)\n")
            }
            for name in names {
                let verdict = probe(name, store: root, workspace: workspace, hostFailed: hostFailed)
                if verdict.ok {
                    printOut("  ok   \(name.padding(16)) \(verdict.text)\n")
                } else {
                    failures += 1
                    printOut("  FAIL \(name.padding(16)) \(verdict.text)\n")
                }
            }
        }
        let lanes = store.laneNames()
        if !lanes.isEmpty { printOut("lanes (\(store.lanesDirectory))\n") }
        for name in lanes {
            do {
                let (lane, _) = try store.load(lane: name, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown))
                printOut("  ok   \(name.padding(16)) profile \(lane.profile)\n")
            } catch {
                failures += 1
                printOut("  FAIL \(name.padding(16)) \(error.diagnostics.first?.description ?? "cannot be loaded")  → run `lanes check`\n")
            }
        }
        if failures > 0 {
            printError("lanes doctor: \(failures) problem(s) found (FAIL above)")
            throw ExitCode(1)
        }
    }

    /// Whether profile `name` can run here, and the reason when it cannot.
    private func probe(_ name: String, store: ConfigStore, workspace: String, hostFailed: Bool) -> (ok: Bool, text: String) {
        guard let text = readTextFile(store.profileFile(name)) else { return (false, "cannot read \(store.profileFile(name))") }
        let profile: Profile
        do {
            profile = try ProfileParser(knownSyscall: SeccompCompiler.isKnown).parse(name: name, file: store.profileFile(name), text: text)
        } catch {
            return (false, "invalid: \(error.diagnostics.first?.description ?? "")  → run `lanes check`")
        }
        let excess = HostLimits.excesses(profile.limits, hard: HostLimits.current())
        if !excess.isEmpty {
            return (false, "cannot run here: rlimits: " + excess.map(\.description).joined(separator: "; "))
        }
        do {
            let compiled = try CompiledProfile(profile)
            let lane = Lane(name: "doctor", description: "probe", owner: "lanes doctor", profile: name)
            var request = StepRequest(lane: lane, profile: profile, argv: ["/bin/true"], workspace: workspace,
                                      timeoutSeconds: 10, captureOutput: true)
            // commit = auto/review: a real overlay step in a scratch workspace and state directory.
            var scratch: String?
            if profile.filesystem.commit != .direct {
                var template = Array("/tmp/lanes-doctor-XXXXXX".utf8CString)
                guard let dir = mkdtemp(&template) else { return (false, "cannot run here: cannot make a scratch directory") }
                let root = String(cString: dir)
                scratch = root
                mkdir(root + "/ws", 0o755)
                request.workspace = root + "/ws"
                request.changeStaging = ChangeStaging(stateDirectory: root + "/state", run: "doctor", step: "1")
                mkdir(root + "/state", 0o700)
            }
            defer {
                if let scratch { _ = try? FileManager.default.removeItem(atPath: scratch) }
            }
            let result = StepRunner(initPath: Paths.initHelper).run(request, compiled: compiled)
            if result.outcome == .exited && result.exitCode == 0 {
                return (true, "can run here (\(String(format1: result.wallMs)) ms for /bin/true)")
            }
            let why = result.error ?? "/bin/true ended \(result.outcome.rawValue) with status \(result.exitStatus)"
            return (false, "cannot run here: \(why)" + (hostFailed ? "  → see the failing host check above" : ""))
        } catch {
            return (false, "cannot run here: \(error.stage): \(error.message)")
        }
    }

    private func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    init(format1 value: Double) { self = String((value * 10).rounded() / 10) }
}
