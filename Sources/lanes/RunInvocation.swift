import Foundation
import Glibc
import LaneModel
import LaneRuntime

/// One `lanes run`, its options already parsed (by argument-parser in `RunCommand`, or by hand
/// on the hot path in `FastRun`): runs the step and exits with its status.
struct RunInvocation {
    var config: String?
    var lane: String
    var workspace: String?
    var timeout: Double?
    var json: Bool
    /// The state directory, resolved.
    var state: String
    var runID: String?
    var step: String?
    var idempotent: Bool
    var effect: String?
    /// `--allow-host-workspace`: recorded in the intent.
    var allowHostWorkspace = false
    var command: [String]

    func execute() -> Never {
        guard let config = Paths.locateConfig(config) else {
            let result = StepResult(lane: lane, profile: "", profileFingerprint: "", outcome: .failedToStart,
                                    exitCode: ExitStatus.failedToStart,
                                    error: "config: no Profiles/ and Lanes/ found (use --config DIR or LANES_CONFIG)")
            finish(StepReport(run: runID, step: step, replayed: false, retried: false, result: result, resultJSON: result.json()))
        }
        let service = StepService(
            options: ServiceOptions(config: config, stateDirectory: state, initHelper: Paths.initHelper,
                                    currentDirectory: Paths.currentDirectory,
                                    hiddenPaths: [Paths.executableDirectory, Paths.parent(Paths.initHelper)],
                                    startsSandboxEarly: true),
            logger: ProcessLogging.logger)
        let call = StepCall(lane: lane, argv: command, workspace: workspace, run: runID, step: step, timeoutSeconds: timeout,
                            idempotent: idempotent, effect: effect, output: json ? .capture : .relay,
                            allowHostWorkspace: allowHostWorkspace)
        let report = service.run(call) { printError("lanes: \($0)") }
        service.close()
        finish(report)
    }

    /// Prints the report (the JSON object, or the replayed output and what went wrong) and exits
    /// with its status.
    private func finish(_ report: StepReport) -> Never {
        let result = report.result
        if json {
            if result.outcome == .refused || result.outcome == .failedToStart { printError("lanes: \(result.error ?? "failed")") }
            printOut(report.json() + "\n")
        } else {
            if report.replayed {
                writeAll(1, result.stdout)
                writeAll(2, result.stderr)
            }
            describe(result)
        }
        Glibc.exit(report.exitStatus)
    }

    private func describe(_ result: StepResult) {
        switch result.outcome {
        case .failedToStart, .refused:
            printError("lanes: \(result.error ?? "failed to start")")
        case .timedOut:
            printError("lanes: step timed out after \(timeout.map { Self.seconds($0) + " " } ?? "its ")deadline; the whole process tree was killed")
        case .stopped:
            printError("lanes: \(result.error ?? "stopped by signal \(result.signal ?? 0)"); the step was ended")
        case .seccompViolation:
            printError("lanes: the step made a forbidden system call and was killed (SIGSYS)")
        case .oomKilled:
            printError("lanes: the step ran out of memory (cgroup limit \(result.memoryPeakBytes.map { "reached at \($0 / 1_048_576) MiB" } ?? "reached")) and was OOM-killed")
        case .pidsLimited:
            printError("lanes: the step hit its pids limit (fork failed with EAGAIN\(result.pidsPeak.map { ", \($0) tasks at most" } ?? ""))")
        case .cpuTimeExceeded:
            printError("lanes: a process of the step used up its CPU time limit (RLIMIT_CPU) and was killed")
        case .signaled, .exited:
            break
        }
        if !result.limitsNotApplied.isEmpty {
            printError("lanes: optional limits not applied on this host: \(result.limitsNotApplied.joined(separator: ", "))")
        }
        if result.stdoutTruncated || result.stderrTruncated {
            let streams = [result.stdoutTruncated ? "stdout" : nil, result.stderrTruncated ? "stderr" : nil].compactMap { $0 }
            printError("lanes: output truncated at the profile's limit (\(streams.joined(separator: ", ")))")
        }
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s))s" : String(format: "%.1fs", s) }
}
