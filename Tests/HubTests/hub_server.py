#!/usr/bin/env python3
"""A small imitation of the Hugging Face Hub's file endpoints, for BackpackHub's tests (stdlib only).

    hub_server.py --repo ORG/NAME=DIR [--repo ...] --log FILE [options]

Binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout and serves until --lifetime seconds
have passed (it always exits by itself).

HEAD/GET /ORG/NAME/resolve/REV/FILE, with REV = main, v1 or the repository's commit hash (40 hex
digits derived from the repo id), answer as the Hub does:
  - every answer carries X-Repo-Commit;
  - a git file: 200, ETag = its git blob sha1, Content-Length;
  - an LFS file (*.safetensors, *.bin): 302 to /cdn/<sha256>, X-Linked-Etag = sha256,
    X-Linked-Size, ETag of the pointer file;
  - unknown repository: 404 X-Error-Code RepoNotFound; unknown revision: 404 RevisionNotFound;
    missing file: 404 EntryNotFound (with X-Repo-Commit).
GET /cdn/<sha256> serves the bytes, with Range (206 + Content-Range, 416 past the end).

Options that imitate failures:
  --private ORG/NAME:TOKEN  401 unless "Authorization: Bearer TOKEN"
  --gated ORG/NAME          403
  --cut FILE                the first GET of FILE's bytes stops half-way (connection closed)
  --cut-always FILE         every GET of FILE stops half-way
  --corrupt FILE            GET serves FILE with its first bytes changed (same length)
  --ignore-range            answer 200 with the whole file even when Range is sent
Each request is logged as one JSON line: method, path, range, authorization.
"""
import argparse
import hashlib
import http.server
import json
import os
import signal
import sys
import threading

LFS_SUFFIXES = (".safetensors", ".bin")


def commit_of(repo_id):
    return hashlib.sha1(("commit:" + repo_id).encode()).hexdigest()


class Repo:
    def __init__(self, repo_id, folder):
        self.id = repo_id
        self.commit = commit_of(repo_id)
        self.files = {}
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                with open(path, "rb") as f:
                    self.files[rel] = f.read()


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def make_handler(options, repos, by_sha, log_lock):
    cut_done = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def record(self):
            entry = {"method": self.command, "path": self.path,
                     "range": self.headers.get("Range"), "authorization": self.headers.get("Authorization")}
            with log_lock, open(options.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

        def reply(self, status, headers, body=b"", send_body=True):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body and body:
                self.wfile.write(body)

        def do_HEAD(self):
            self.handle_any(send_body=False)

        def do_GET(self):
            self.handle_any(send_body=True)

        def handle_any(self, send_body):
            self.record()
            parts = self.path.split("?")[0].split("/")
            if len(parts) == 3 and parts[1] == "cdn":
                return self.serve_blob(parts[2], send_body)
            # /ORG/NAME/resolve/REV/FILE...
            if len(parts) < 6 or parts[3] != "resolve":
                return self.reply(404, {"X-Error-Code": "EntryNotFound"}, b"not a resolve URL", send_body)
            repo_id = parts[1] + "/" + parts[2]
            revision = parts[4]
            filename = "/".join(parts[5:])
            repo = repos.get(repo_id)
            if repo is None:
                return self.reply(404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                                  b"", send_body)
            if repo_id in options.private_tokens:
                if self.headers.get("Authorization") != "Bearer " + options.private_tokens[repo_id]:
                    return self.reply(401, {"X-Error-Code": "RepoNotFound",
                                            "X-Error-Message": "Invalid credentials in Authorization header"},
                                      b"", send_body)
            if repo_id in options.gated:
                return self.reply(403, {"X-Error-Code": "GatedRepo",
                                        "X-Error-Message": "Access to model " + repo_id + " is restricted"},
                                  b"", send_body)
            if revision not in ("main", "v1", repo.commit):
                return self.reply(404, {"X-Error-Code": "RevisionNotFound",
                                        "X-Error-Message": "Invalid rev id: " + revision}, b"", send_body)
            common = {"X-Repo-Commit": repo.commit}
            data = repo.files.get(filename)
            if data is None:
                return self.reply(404, dict(common, **{"X-Error-Code": "EntryNotFound",
                                                       "X-Error-Message": "Entry not found"}), b"", send_body)
            if filename.endswith(LFS_SUFFIXES):
                sha = hashlib.sha256(data).hexdigest()
                pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (sha, len(data))).encode()
                port = self.server.server_address[1]
                headers = dict(common, **{"Location": "http://127.0.0.1:%d/cdn/%s" % (port, sha),
                                          "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data)),
                                          "ETag": '"%s"' % git_sha1(pointer)})
                return self.reply(302, headers, b"", send_body)
            headers = dict(common, **{"ETag": '"%s"' % git_sha1(data), "Content-Type": "application/octet-stream"})
            return self.reply(200, headers, data, send_body)

        def serve_blob(self, sha, send_body):
            found = by_sha.get(sha)
            if found is None:
                return self.reply(404, {}, b"no such blob", send_body)
            name, data = found
            if name in options.corrupt:
                data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
            start = 0
            status = 200
            headers = {"ETag": '"%s"' % sha, "Accept-Ranges": "bytes"}
            requested = self.headers.get("Range")
            if requested and not options.ignore_range:
                if not requested.startswith("bytes=") or not requested.endswith("-"):
                    return self.reply(400, {}, b"only bytes=N- is supported here", send_body)
                start = int(requested[len("bytes="):-1])
                if start >= len(data):
                    return self.reply(416, {"Content-Range": "bytes */%d" % len(data)}, b"", send_body)
                status = 206
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
            body = data[start:]
            headers["Content-Length"] = str(len(body))
            cut = send_body and (name in options.cut_always or (name in options.cut and name not in cut_done))
            if not cut:
                return self.reply(status, headers, body, send_body)
            cut_done.add(name)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            # Close the socket with the body unfinished: the client sees a short transfer.
            self.connection.shutdown(2)

    return Handler


def main():
    # Drop descriptors inherited from the test process: another test's child-exit descriptor or
    # pipe held open here would keep that test waiting until this server exits.
    os.closerange(3, 4096)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", action="append", default=[], help="ORG/NAME=DIR")
    parser.add_argument("--log", required=True)
    parser.add_argument("--private", action="append", default=[], help="ORG/NAME:TOKEN")
    parser.add_argument("--gated", action="append", default=[])
    parser.add_argument("--cut", action="append", default=[])
    parser.add_argument("--cut-always", action="append", default=[])
    parser.add_argument("--corrupt", action="append", default=[])
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--lifetime", type=float, default=60.0, help="seconds before the server exits by itself")
    options = parser.parse_args()
    options.private_tokens = dict(p.split(":", 1) for p in options.private)

    repos = {}
    by_sha = {}
    for spec in options.repo:
        repo_id, folder = spec.split("=", 1)
        repo = Repo(repo_id, folder)
        repos[repo_id] = repo
        for name, data in repo.files.items():
            by_sha[hashlib.sha256(data).hexdigest()] = (name, data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(options, repos, by_sha, threading.Lock()))
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    timer = threading.Timer(options.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
