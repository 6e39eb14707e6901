import Foundation

/// Every failure of a download or of a cache look-up, with a message that names the repository,
/// file or path and says what to do. `kind` lets callers (and tests) react without parsing text.
public struct DownloadError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// 401: no token, or a token without access.
        case unauthorized
        /// 403: gated repository whose licence was not accepted, or token without read access.
        case forbidden
        /// 404 (repository, revision or file) or another HTTP status that is not a transfer.
        case notFound
        case httpStatus(Int)
        /// The bytes do not hash to the SHA-256 the server stated; the partial file was removed.
        case checksumMismatch
        /// The connection broke mid-body; the partial file is kept for resuming.
        case interrupted
        /// The server could not be reached at all (offline, refused, DNS, timeout before a response).
        case unreachable
        /// A write failed: full disk, quota or file-size limit (errno in the message).
        case diskFull
        case notWritable
        /// HF_HUB_OFFLINE is set and the files are not all in the cache.
        case notCached
        /// The server answered something a Hub does not (no commit header, bad Content-Range...).
        case badResponse
        case badInput
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
