import Logging

/// The logging of a front-door process (`lanes`, `lanes-mcp`): swift-log to stderr, one line per
/// event, at the level `LANES_LOG` names (`debug`, `info`, `warning`; default `warning`).
/// Bootstrapped once, on first use. Libraries take the logger; they never log a credential value
/// (names only).
public enum ProcessLogging {
    public static let logger: Logger = {
        let level = Paths.environment("LANES_LOG").flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "lanes")
        logger.logLevel = level
        return logger
    }()
}
