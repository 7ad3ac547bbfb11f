import MCP

/// The tools `lanes mcp` offers, with JSON schemas and descriptions written for a model to read.
/// Every tool but `run_status` runs one journaled step in the lane's sandbox.
enum ToolCatalog {
    static let stepIDProperty: Value = .object([
        "type": "string",
        "description": "An id for this step within the run. Calling again with the same step_id and the same request replays the recorded result instead of running it again (safe retries). Omit it to get the run's next ordinal.",
    ])
    static let timeoutProperty: Value = .object([
        "type": "number", "exclusiveMinimum": 0,
        "description": "Wall-clock deadline for the step in seconds (default: the lane's profile). At the deadline the whole process tree is killed (outcome timed_out, status 124).",
    ])
    static let approvalWaitProperty: Value = .object([
        "type": "number", "minimum": 0,
        "description": "When the lane's review rules gate this step, wait up to this many seconds for a human to run `lanes approve RUN STEP`, then run it. 0 (default): return at once with outcome refused, reason awaiting_approval.",
    ])

    /// The tools' names, for messages.
    static var names: [String] { [runCommand, readFile, writeFile, listFiles, runStatus].map(\.name) }

    /// The tools for a lane whose steps have `network`: run_command says what the sandbox can
    /// reach (a model that knows there is no network does not spend calls finding out), and its
    /// `openWorldHint` is true only when the lane's egress proxy lets some hosts through.
    static func tools(network: NetworkReach) -> [Tool] {
        var annotations = runCommand.annotations
        annotations.openWorldHint = network.isOpen
        let run = Tool(name: runCommand.name, title: runCommand.title,
                       description: (runCommand.description ?? "") + " " + network.sentence,
                       inputSchema: runCommand.inputSchema, annotations: annotations)
        return [run, readFile, writeFile, listFiles, runStatus]
    }

    static let runCommand = Tool(
        name: "run_command",
        description: """
            Run one command in a fresh, isolated sandbox of this lane (no network unless the lane allows it, \
            read-only system, the workspace mounted at its own path and set as the working directory). \
            Give either `argv` (the program and its arguments, no shell) or `command` (one string run with `sh -c`). \
            Every call is one journaled step of this server's run. The result is JSON: exit_status (the number \
            `lanes run` would exit with), outcome (exited, signaled, timed_out, refused, stopped, …), stdout and \
            stderr (capped at the profile's output limit, secrets redacted), wall_ms, and the run and step ids. \
            isError is true when the step failed or was refused; `reason` then says why (awaiting_approval, halted, \
            nondeterministic, in_doubt, …) and `error` explains what to do.
            """,
        inputSchema: .object([
            "type": "object",
            "properties": .object([
                "argv": .object(["type": "array", "items": .object(["type": "string"]), "minItems": 1,
                                 "description": "The program and its arguments, e.g. [\"python3\", \"-c\", \"print(1)\"]."]),
                "command": .object(["type": "string", "minLength": 1,
                                    "description": "A shell command line, run as [\"sh\", \"-c\", command]. Use instead of argv."]),
                "stdin": .object(["type": "string", "description": "Text written to the command's standard input (default: none, end of file)."]),
                "timeout_seconds": timeoutProperty,
                "step_id": stepIDProperty,
                "idempotent": .object(["type": "boolean", "description": "Running this again is harmless: if an earlier attempt was left in doubt (the server died mid-step), run it again instead of refusing."]),
                "effect": .object(["type": "string", "description": "Declare the step's effect (e.g. \"irreversible\"); the lane's review rules may gate it."]),
                "approval_wait_seconds": approvalWaitProperty,
            ]),
            "additionalProperties": false,
        ]),
        annotations: .init(title: "Run a command in the sandbox", destructiveHint: true, openWorldHint: false))

    static let readFile = Tool(
        name: "read_file",
        description: """
            Read a text file inside the sandbox (a journaled step running `cat`, or `sed -n` for a range of lines): \
            the lane's profile decides what is visible. A relative path is relative to the workspace. The content is \
            the step's stdout; a reply carries its head and tail only (stdout_truncated says so), so read a long file \
            a range of lines at a time with start_line and lines.
            """,
        inputSchema: .object([
            "type": "object",
            "properties": .object([
                "path": .object(["type": "string", "minLength": 1, "description": "The file, relative to the workspace or absolute."]),
                "start_line": .object(["type": "integer", "minimum": 1, "description": "The first line to read (1 is the first; default 1)."]),
                "lines": .object(["type": "integer", "minimum": 1, "maximum": 1_000_000,
                                  "description": "How many lines to read from start_line (default: to the end)."]),
                "step_id": stepIDProperty,
            ]),
            "required": .array(["path"]),
            "additionalProperties": false,
        ]),
        annotations: .init(title: "Read a file in the sandbox", readOnlyHint: true, openWorldHint: false))

    static let writeFile = Tool(
        name: "write_file",
        description: """
            Write (create or replace) a text file inside the sandbox (a journaled step running `sh -c 'cat > "$1"'` \
            with the content on stdin): only where the lane's profile allows writing, normally the workspace. \
            Parent directories are not created.
            """,
        inputSchema: .object([
            "type": "object",
            "properties": .object([
                "path": .object(["type": "string", "minLength": 1, "description": "The file, relative to the workspace or absolute."]),
                "content": .object(["type": "string", "description": "The whole new content."]),
                "step_id": stepIDProperty,
                "approval_wait_seconds": approvalWaitProperty,
            ]),
            "required": .array(["path", "content"]),
            "additionalProperties": false,
        ]),
        annotations: .init(title: "Write a file in the sandbox", destructiveHint: true, openWorldHint: false))

    static let listFiles = Tool(
        name: "list_files",
        description: """
            List a directory inside the sandbox (a journaled step running `ls -lA`; with recursive, \
            `find PATH -maxdepth DEPTH`). Default: the workspace.
            """,
        inputSchema: .object([
            "type": "object",
            "properties": .object([
                "path": .object(["type": "string", "description": "The directory (default \".\", the workspace)."]),
                "recursive": .object(["type": "boolean", "description": "List the whole tree (up to max_depth levels)."]),
                "max_depth": .object(["type": "integer", "minimum": 1, "maximum": 64, "description": "Levels for recursive (default 8)."]),
                "step_id": stepIDProperty,
            ]),
            "additionalProperties": false,
        ]),
        annotations: .init(title: "List files in the sandbox", readOnlyHint: true, openWorldHint: false))

    static let runStatus = Tool(
        name: "run_status",
        description: """
            The state of this server's run from the journal: its most recent steps (id, outcome, exit status; 50 \
            unless `steps` asks for another number, with how many earlier ones are not listed), the budget used \
            (steps, wall and CPU seconds, output bytes, failed steps), each budget limit with its use (`budget`), whether the run is \
            halted or stopped, and approvals pending (with the `lanes approve` command a human runs). Runs nothing.
            """,
        inputSchema: .object([
            "type": "object",
            "properties": .object([
                "steps": .object(["type": "integer", "minimum": 1, "maximum": 1000,
                                  "description": "How many of the most recent steps to list, oldest first (default 50)."]),
            ]),
            "additionalProperties": false,
        ]),
        annotations: .init(title: "Run status", readOnlyHint: true, idempotentHint: true, openWorldHint: false))
}
