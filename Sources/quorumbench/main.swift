import ArgumentParser
import Foundation

// Errors a user can cause print one line and exit 64 (bad flags, values or scenario files); a run that fails at
// run time exits 1; help and --version exit 0. No stack traces for user errors.
do {
    var command = try Quorumbench.parseAsRoot()
    do {
        try command.run()
    } catch let e as UsageError {
        FileHandle.standardError.write("quorumbench: \(e.description)\n")
        exit(64)
    }
} catch let e as UsageError {
    FileHandle.standardError.write("quorumbench: \(e.description)\n")
    exit(64)
} catch {
    let code = Quorumbench.exitCode(for: error)
    if code == .success {
        Quorumbench.exit(withError: error)
    }
    if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
    let message = Quorumbench.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    FileHandle.standardError.write("quorumbench: \(message.replacingOccurrences(of: "Error: ", with: ""))\n")
    exit(code == .validationFailure || code.rawValue == 64 ? 64 : code.rawValue)
}
