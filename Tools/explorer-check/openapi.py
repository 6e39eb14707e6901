import json
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def arr(s, **kw): return {"type": "array", "items": s, **kw}
num = {"type": "number"}
integer = {"type": "integer"}
string = {"type": "string"}
def obj(props, required=None, extra=False):
    o = {"type": "object", "properties": props, "additionalProperties": extra}
    o["required"] = list(props.keys()) if required is None else required
    if not o["required"]: del o["required"]
    return o
err = lambda d: {"description": d, "content": {"application/json": {"schema": ref("Error")}}}
ok = lambda d, s: {"description": d, "content": {"application/json": {"schema": ref(s)}}}
interventions = {"type": "array", "maxItems": 256, "description": "Interventions in the edit file's own schema (backpack-edit/1) as JSON, or {\"edit\": NAME} for an edit file loaded at start. Applied in order to the base model. A request never names a file.",
                 "items": {"type": "object", "additionalProperties": True, "example": {"words": ["nurse"], "senses": [10], "scale": 0}}}
text = {"type": "string", "minLength": 1, "maxLength": 20000, "description": "At least one token and at most n_positions tokens.", "example": "The nurse said that"}
common = {"400": err("A field is wrong: `field` names it, `message` says what was expected."),
          "403": err("No or a wrong token, or a foreign Host or Origin."),
          "413": err("The body is over 1 MB."),
          "422": err("The model cannot answer this (a plain GPT-2 has no senses)."),
          "503": err("Too many computations are waiting; retry after the Retry-After seconds.")}
def post(summary, body_props, required, resp, desc, extra_codes=None, status="200"):
    responses = {status: ok(desc, resp), **{k: v for k, v in common.items()}, **(extra_codes or {})}
    # A body whose fields all have defaults may be left out.
    return {"post": {"summary": summary, "requestBody": {"required": bool(required), "content": {"application/json": {"schema": obj(body_props, required)}}},
                     "responses": responses}}
cand = obj({"id": integer, "token": string, "logprob": num})
scored = obj({"id": integer, "token": string, "score": num})
matrix = arr(arr(num))
ci = {"type": "array", "items": num, "minItems": 2, "maxItems": 2}
nnum = {"type": "number"}
schemas = {
  "Error": obj({"error": obj({"status": integer, "field": string, "message": string}, ["status", "message"])}),
  "Info": obj({"model": obj({"path": string, "architecture": string, "vocab_size": integer, "n_positions": integer, "senses": integer, "n_embd": integer}),
               "edits": arr(obj({"name": string, "file": string, "description": string, "interventions": arr(string), "word_level": {"type": "boolean"}},
                                ["name", "file", "interventions", "word_level"])),
               "suites": arr(string), "results_file": string, "edits_directory": string}),
  "Prediction": obj({"tokens": arr(obj({"id": integer, "text": string})), "base": obj({"top": arr(cand)}), "edited": obj({"top": arr(cand)}),
                     "applied": arr(string)}),
  "Attribution": obj({"tokens": arr(string), "ids": arr(integer), "pair": arr(string), "contributions": matrix, "total": num,
                      "logit_difference": num,
                      "edits": arr(obj({"name": string, "contributions": matrix, "total": num, "logit_difference": num}))},
                     ["tokens", "ids", "pair", "contributions", "total", "logit_difference"]),
  "Senses": obj({"word": string, "id": integer, "token": string,
                 "senses": arr(obj({"sense": integer, "promoted": arr(scored), "suppressed": arr(scored)}))}),
  "EditFile": obj({"name": string, "file_name": string, "yaml": string, "path": string}, ["name", "file_name", "yaml"]),
  "Metric": obj({"suite": string, "metric": string, "description": string, "unit": string, "better": string,
                 "base": nnum, "base_ci": ci, "edited": nnum, "edited_ci": ci, "diff": nnum, "diff_ci": ci,
                 "p": nnum, "p_holm": nnum, "q": nnum, "test": string},
                ["suite", "metric", "description", "unit", "better", "test"]),
  "Evaluation": obj({"id": string, "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]}, "suites": arr(string),
                     "name": string, "progress": arr(string), "metrics": arr(ref("Metric")), "out": string, "run": string, "error": string},
                    ["id", "state", "suites", "name", "progress"]),
}
doc = {
  "openapi": "3.0.3",
  "info": {"title": "backpack explore", "version": "1",
           "description": "The JSON API of `backpack explore` (docs/EXPLORE.md). Every /api call carries `Authorization: Bearer TOKEN`, the token printed at start; the Host header must name the server and an Origin header, when present, its own page."},
  "servers": [{"url": "/"}],
  "security": [{"token": []}],
  "paths": {
    "/api/info": {"get": {"summary": "The model, the edit files loaded at start, the suites the page can evaluate.",
                          "responses": {"200": ok("What the page shows first.", "Info"), "403": common["403"]}}},
    "/api/predict": post("The next token after the text: top-k log-probabilities for the base model and under the interventions.",
                         {"text": text, "top_k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}, "interventions": interventions},
                         ["text"], "Prediction", "log-softmax of the last position's logits, base and edited."),
    "/api/attribute": post("log p(A) - log p(B) for the next token, split exactly over (sense, position); the fields of `backpack attribute --json`.",
                           {"text": text, "pair": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "minItems": 2, "maxItems": 2, "default": ["he", "she"]},
                            "interventions": interventions},
                           ["text"], "Attribution", "contributions[l][j] for sense l and position j; `edits` holds the intervention's when there is one."),
    "/api/senses": {"get": {"summary": "For every sense of a token, the words it promotes and suppresses most (E C(x)_l), as `backpack senses`.",
                            "parameters": [
                              {"name": "word", "in": "query", "schema": {"type": "string", "maxLength": 1000}, "description": "A word that is one token after a space (give word or id)."},
                              {"name": "id", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "A token id (give word or id)."},
                              {"name": "top", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 8}},
                              {"name": "space", "in": "query", "schema": {"type": "boolean", "default": True}, "description": "Tokenize the word with a leading space."}],
                            "responses": {"200": ok("16 senses (the model's k), each with its top words.", "Senses"), "400": common["400"],
                                          "403": common["403"], "422": common["422"], "503": common["503"]}}},
    "/api/edit-file": post("The interventions as a backpack-edit/1 YAML file; with save, written under the edits folder with a sanitized name.",
                           {"interventions": {**interventions, "minItems": 1}, "name": {"type": "string", "maxLength": 200, "default": "explore-edit"}, "save": {"type": "boolean", "default": False}},
                           ["interventions"], "EditFile", "The YAML text, and where it was written.",
                           {"409": err("The file could not be written.")}),
    "/api/evaluate": post("Runs suites on the base model and the interventions in the background, stored in the results file as `backpack eval` stores them.",
                          {"suites": {"type": "array", "items": {"type": "string"}, "maxItems": 16, "default": ["pronoun-bias"]}, "interventions": interventions,
                           "name": {"type": "string", "maxLength": 200, "default": "explore"}},
                          [], "Evaluation", "Queued; follow it at /api/evaluations/{id}/events.",
                          {"429": err("Four evaluations are queued or running.")}, status="202"),
    "/api/evaluations/{id}": {"get": {"summary": "An evaluation's state, progress lines and, when done, its metrics.",
                                      "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                                      "responses": {"200": ok("The evaluation.", "Evaluation"), "403": common["403"], "404": err("No such evaluation.")}}},
    "/api/evaluations/{id}/events": {"get": {"summary": "Server-sent events: `progress` (one line each), then `done` or `failed` with the evaluation as JSON.",
                                             "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                                             "responses": {"200": {"description": "An event stream that ends with the evaluation.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                                                           "403": common["403"], "404": err("No such evaluation.")}}},
  },
  "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
}
print(json.dumps(doc, indent=1))
