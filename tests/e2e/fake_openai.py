"""A stand-in for a served model's OpenAI-compatible endpoint, for the
evaluation gate tests: it answers each question of a JSONL dataset, the
right answer for the first share of the rows (`--correct`, changed at run
time by writing a number to the file `--correct-file` names) and a wrong
one for the rest. Prints its port on the first line.

    python3 tests/e2e/fake_openai.py DATASET.jsonl CORRECT_FILE
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
correct_file = Path(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        question = body["messages"][-1]["content"]
        share = float(correct_file.read_text().strip() or 0)
        index = next((i for i, row in enumerate(rows) if row["question"] == question), None)
        right = index is not None and index < round(share * len(rows))
        content = f"The answer is {rows[index]['answer']}." if right else "I do not know."
        answer = {"object": "chat.completion", "model": body.get("model"),
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
