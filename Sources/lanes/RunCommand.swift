import ArgumentParser
import Foundation
import Glibc
import LaneModel
import LaneRuntime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        // Named in full in usage lines also when parsed directly on the hot path (see LanesCommand.main).
        _superCommandName: "lanes",
        abstract: "Run one command as a step in a fresh sandbox of LANE.",
        discussion: """
            The step's stdout and stderr are relayed as they are written (up to the profile's
            output limit). SIGINT or SIGTERM to lanes stops the step cleanly.

            Exit status:
              N      the step's own exit code
              124    the wall-clock deadline fired (the whole process tree is dead by then)
              125    lanes failed before the step started (bad lane or profile, a protection
                     that cannot be applied here, sandbox set-up); the message names the stage
              126    the command cannot be executed
              127    the command was not found
              128+N  the step was killed by signal N (159 = SIGSYS: a seccomp violation);
                     130/143 when lanes was stopped by SIGINT/SIGTERM
              137    oom_killed: the step's cgroup hit limits.memory and the OOM killer fired
              152    cpu_time_exceeded: a process used up limits.cpu (RLIMIT_CPU, SIGXCPU)
                     pids_limited (a fork failed at limits.pids and the step failed) keeps the
                     step's own status; the JSON result (--json) names the limit that fired
                     ("limit") and reports memory_peak_bytes, cgroup_cpu_ms and pids_peak
              64     the command line itself is wrong
              74     the journal cannot be opened or written, or the run's hash chain is broken
                     (nothing is appended to a broken run; see `lanes verify RUN`)
              75     nondeterminism: this (run, step) was recorded with a different intent
                     (argv, cwd, environment or credential names, profile fingerprint, limits);
                     the message names the fields that differ; nothing was run
              76     in doubt: an earlier supervisor died after the step's intent and before its
                     result, and the lane does not allow retrying (retry = "safe" or
                     --idempotent); the step needs review; nothing was run
              77     in flight: another live supervisor is running this step right now
              78     awaiting approval: the lane's [review] gates this step (the message names the
                     rule); recorded as approval_requested; nothing was run. After
                     `lanes approve RUN STEP --by NAME`, the same command with --run/--step runs once
              79     denied or expired: the step's approval was denied (`lanes deny`) or not given
                     within the lane's review timeout; nothing was run
              80     halted: the run exhausted a [budget] or loop detection tripped ("loop
                     suspected"); nothing was run until `lanes resume RUN --by NAME [--raise K=V]`
              81     stopped: the run was stopped (`lanes stop`, or an outcome in the lane's
                     halt_on); no further step of it runs

            Journal: every step is recorded in the state directory (--state, LANES_STATE,
            $XDG_STATE_HOME/lanes, /var/lib/lanes for root). Without --run a new run is created
            and its id printed on stderr ("lanes: run ID"); without --step the step gets the
            run's next ordinal. Invoking a completed (run, step) again with the same intent runs
            nothing: the recorded output is printed, the recorded status returned and a stderr
            line says it was replayed ("replayed": true with --json).
            """)

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The lane (a file Lanes/LANE.toml).")
    var lane: String

    @Option(help: ArgumentHelp("The workspace directory (default: the lane's, else the current directory). It appears at its own absolute path.", valueName: "DIR"))
    var workspace: String?

    // MERGE(issue 11): one duration syntax for profiles and the CLI (`90`, `500ms`, `5m`, `1h`).
    @Option(help: ArgumentHelp("Wall-clock deadline: seconds, or a duration like 500ms, 5m, 1h (default: the profile's).", valueName: "DURATION"),
            transform: ArgumentSyntax.duration)
    var timeout: Double?

    @Flag(help: "Print one JSON object with the result at the end instead of relaying output.")
    var json = false

    @OptionGroup var stateOptions: StateOptions

    // MERGE(issue 11): run and step ids have one syntax (InputSyntax.checkID), checked here.
    @Option(name: .customLong("run"), help: ArgumentHelp("The run this step belongs to (default: a new run); 1-64 of A-Z a-z 0-9 . _ -.", valueName: "ID"),
            transform: ArgumentSyntax.runID)
    var runID: String?

    @Option(help: ArgumentHelp("The step's id within the run (default: the run's next ordinal).", valueName: "ID"),
            transform: ArgumentSyntax.stepID)
    var step: String?

    @Flag(help: "This invocation is harmless to repeat: a step left in doubt by a dead supervisor may run again.")
    var idempotent = false

    // MERGE(issue 11): only the documented effects (InputSyntax.effects).
    @Option(help: ArgumentHelp("Declare the step's effect (\(InputSyntax.effects.keys.sorted().joined(separator: ", "))); the lane's [review] effects gate it.", valueName: "EFFECT"),
            transform: ArgumentSyntax.effect)
    var effect: String?

    // MERGE(issue 11): the documented override of HostWorkspace; recorded in the intent.
    @Flag(help: "Allow a workspace that exposes the host (/, /etc, a home directory, …; see docs/security.md). Recorded in the step's intent.")
    var allowHostWorkspace = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after `--`.", valueName: "CMD"))
    var command: [String] = []

    func validate() throws {
        try ArgumentSyntax.checkCommand(command)  // MERGE(issue 11): `-- ""` is a usage error too
        if let timeout, !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout expects a number of seconds > 0, found \(timeout)") }
    }

    func run() throws {
        RunInvocation(config: configOptions.config, lane: lane, workspace: workspace, timeout: timeout, json: json,
                      state: stateOptions.resolved, runID: runID, step: step, idempotent: idempotent, effect: effect,
                      allowHostWorkspace: allowHostWorkspace, command: command).execute()
    }
}
