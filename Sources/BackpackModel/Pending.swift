import BackpackCheckpoint
import Foundation
// TEMPORARY until the pickle reader lands.
typealias TorchCheckpointPENDING = SafetensorsFile
extension SafetensorsFile { convenience init(url: URL, pending: Void) throws { try self.init(url: url) } }
