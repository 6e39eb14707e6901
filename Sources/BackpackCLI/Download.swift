import ArgumentParser
import BackpackHub
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a model from the Hugging Face Hub into the Hugging Face cache (shared with transformers).",
        discussion: """
            Fetches config.json, the weights (model.safetensors; else model.safetensors.index.json and its \
            shards; else pytorch_model.bin), the tokenizer files the repository has and the .py files config.json's \
            auto_map names. Cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. Server: \
            HF_ENDPOINT (default https://huggingface.co). Token: HF_TOKEN. Interrupted transfers resume; LFS files \
            are checked against their SHA-256. Afterwards `--model ORG/NAME[@REVISION]` works offline. See docs/HUB.md.
            """)

    @Argument(help: "Repository id ORG/NAME, optionally ORG/NAME@REVISION.") var repo: String
    @Option(name: .long, help: "Branch, tag or commit hash (default main).") var revision: String?

    func run() throws {
        // A file-size limit (ulimit -f) should fail the write with EFBIG and a message, not kill us.
        signal(SIGXFSZ, SIG_IGN)
        var ref = try HubReference(parsing: repo)
        if let revision {
            guard !repo.contains("@") || ref.revision == revision else {
                throw ValidationError("the revision is given twice ('\(repo)' and --revision \(revision))")
            }
            ref = try HubReference(repoID: ref.repoID, revision: revision)
        }
        let downloader = HubDownloader(progress: ProgressDisplay())
        let outcome = try downloader.download(ref)
        let cached = outcome.files.count - outcome.downloaded.count
        var summary = "\(ref) -> commit \(outcome.commit): \(outcome.files.count) file(s), \(outcome.downloaded.count) downloaded, \(cached) already cached"
        if !outcome.absent.isEmpty { summary += "; not in the repository: \(outcome.absent.joined(separator: ", "))" }
        if outcome.files.isEmpty { summary = "\(ref): complete in the cache (HF_HUB_OFFLINE is set; nothing checked online)" }
        FileHandle.standardError.write(Data((summary + "\n").utf8))
        print(outcome.snapshot.path)
    }
}
