"""Prompt-bank generation against a fake OpenAI-compatible server on 127.0.0.1 and a tiny local GPT-2."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aape_lightning.cli import prompts_main
from aape_lightning.prompts import (
    OpenAIBackend,
    clean_answer,
    clean_answers,
    read_class_list,
    read_prompt_file,
    render_question,
)
from aape_lightning.prompts.generate import item_seed

QUESTIONS = ["Describe what {a_name} looks like.", "How can you identify {}?"]


class FakeLLM:
    """A canned OpenAI-compatible server: records every request, fails on request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail_when: set[str] = set()  # questions containing any of these get HTTP 500
        self.fail_next = 0  # this many requests get HTTP 503 first
        self.max_choices: int | None = None  # emulate servers that ignore n

    def reply(self, path: str, body: dict) -> tuple[int, dict]:
        self.requests.append({"path": path, **body})
        question = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        if self.fail_next:
            self.fail_next -= 1
            return 503, {"error": "busy"}
        if any(word in question for word in self.fail_when):
            return 500, {"error": "boom"}
        n = min(body.get("n", 1), self.max_choices or 99)
        text = question.rstrip("?.")
        answers = [f' 1. "Answer {i} to: {text} (seed {body["seed"]})." More words.\nA second line.' for i in range(n)]
        if "messages" in body:
            return 200, {"choices": [{"message": {"role": "assistant", "content": a}} for a in answers]}
        return 200, {"choices": [{"text": a} for a in answers]}


@pytest.fixture()
def fake_llm():
    llm = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, payload = llm.reply(self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    llm.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield llm
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def files(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("# pets\ncat\n\ndog\nred_fox\nowl\n")
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS))
    return classes, questions, tmp_path / "out" / "bank.json"


def run(llm, classes, questions, out, *extra):
    return prompts_main(
        ["generate", "--classes", str(classes), "--out", str(out), "--url", llm.url, "--model", "fake",
         "--questions-file", str(questions), "--per-question", "2", "--timeout", "5", "--retries", "0", *extra]
    )


def test_output_format_and_requests(fake_llm, files, capsys):
    classes, questions, out = files
    assert run(fake_llm, classes, questions, out, "--dataset-hint", "a type of animal", "--seed", "7") == 0
    bank = read_prompt_file(out)
    assert list(bank) == ["cat", "dog", "red_fox", "owl"]
    for _name, prompts in bank.items():
        assert len(prompts) == 4 and len(set(prompts)) == 4
        assert all(p.startswith("Answer ") and p.endswith(").") and "\n" not in p for p in prompts)
    seed = item_seed(7, "owl", QUESTIONS[0])
    assert bank["owl"][0] == f"Answer 0 to: Describe what an owl (a type of animal) looks like (seed {seed})."
    first = fake_llm.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["model"] == "fake" and first["n"] == 2
    assert first["messages"][0]["role"] == "system" and first["temperature"] == 0.8
    assert len(fake_llm.requests) == 4 * 2  # one request per class and question
    assert "4 of 4 classes, 16 prompts" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["bank.json"]  # no temp files left behind


def test_resume_after_failure_keeps_and_skips_done_classes(fake_llm, files, capsys):
    classes, questions, out = files
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({"zebra": ["a striped horse."]}))  # someone else's entry: must survive
    fake_llm.fail_when = {"red_fox"}
    assert run(fake_llm, classes, questions, out) == 1
    err = capsys.readouterr().err
    assert "HTTP 500" in err and "rerun the same command" in err
    partial = read_prompt_file(out)
    assert list(partial) == ["cat", "dog", "zebra"]

    fake_llm.fail_when, fake_llm.requests = set(), []
    assert run(fake_llm, classes, questions, out) == 0
    bank = read_prompt_file(out)
    assert list(bank) == ["cat", "dog", "red_fox", "owl", "zebra"]
    assert bank["cat"] == partial["cat"] and bank["dog"] == partial["dog"] and bank["zebra"] == ["a striped horse."]
    asked = " ".join(r["messages"][-1]["content"] for r in fake_llm.requests)
    assert "cat" not in asked and "dog" not in asked and "red_fox" in asked and "owl" in asked

    fake_llm.requests = []
    assert run(fake_llm, classes, questions, out) == 0 and fake_llm.requests == []  # all done: nothing asked


def test_same_seed_same_requests_on_resume(fake_llm, files, tmp_path):
    classes, questions, out = files
    assert run(fake_llm, classes, questions, out) == 0
    seeds_full = [r["seed"] for r in fake_llm.requests if "owl" in r["messages"][-1]["content"]]
    fresh = tmp_path / "only_owl.json"
    fresh.write_text(json.dumps({n: ["x."] for n in ["cat", "dog", "red_fox"]}))
    fake_llm.requests = []
    assert run(fake_llm, classes, questions, fresh) == 0
    assert [r["seed"] for r in fake_llm.requests] == seeds_full
    assert read_prompt_file(fresh)["owl"] == read_prompt_file(out)["owl"]


def test_completions_api_retry_and_servers_ignoring_n(fake_llm):
    backend = OpenAIBackend(fake_llm.url, "fake", api_key="k", api="completions", retries=1, retry_wait=0.01)
    fake_llm.fail_next, fake_llm.max_choices = 1, 1
    answers = backend.ask("What does a cat look like?", 3, seed=10)
    assert len(answers) == 3
    sent = fake_llm.requests
    assert [r["path"] for r in sent] == ["/v1/completions"] * 4  # one 503, then three single-choice replies
    assert [r["seed"] for r in sent[1:]] == [10, 11, 12] and [r["n"] for r in sent[1:]] == [3, 2, 1]
    assert sent[1]["prompt"] == "Q: What does a cat look like?\nA:"


def test_usage_errors_return_2(tmp_path, files, capsys):
    classes, questions, out = files
    assert prompts_main(["generate", "--classes", str(tmp_path / "none.txt"), "--out", str(out), "--url", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert prompts_main(["generate", "--classes", str(classes), "--out", str(out)]) == 2
    assert "--url URL --model NAME" in capsys.readouterr().err
    bad_q = tmp_path / "q.txt"
    bad_q.write_text("Describe the thing.\n")
    assert prompts_main(["generate", "--classes", str(classes), "--out", str(out), "--url", "http://127.0.0.1:9/v1",
                         "--model", "m", "--questions-file", str(bad_q)]) == 2
    assert "without a class placeholder" in capsys.readouterr().err
    assert prompts_main(["generate", "--classes", str(classes), "--out", str(out), "--url", "http://127.0.0.1:9/v1",
                         "--model", "m", "--api-key-env", "AAPE_TEST_SURELY_UNSET"]) == 2
    assert "AAPE_TEST_SURELY_UNSET" in capsys.readouterr().err
    assert not out.exists()


def test_class_list_from_coop_split(tmp_path):
    split = tmp_path / "split_zhou_Tiny.json"
    rows = [["a/1.jpg", 2, "missile"], ["b/1.jpg", 0, "cat"], ["c/1.jpg", 1, "missile"], ["d/1.jpg", 0, "cat"]]
    split.write_text(json.dumps({"train": rows[:2], "val": [], "test": rows[2:]}))
    assert read_class_list(split) == ["cat", "missile"]  # by label; a bank is keyed by name


def test_cleaning_and_questions():
    assert clean_answer(' 2) "A cat has whiskers." It purrs.\nmore') == "A cat has whiskers."
    assert clean_answer("\n\nAnswer: St. Bernard dogs are large, e.g. 70 kg. Yes.") == (
        "St. Bernard dogs are large, e.g. 70 kg."
    )
    assert clean_answer("  ...  ") is None and clean_answer("") is None
    kept = clean_answers(["A red fox runs.", "a red fox runs.", "It has a bushy tail."], "red_fox")
    assert kept == ["A red fox runs.", "It has a bushy tail."]
    assert clean_answers(kept, "red_fox", require_name=True) == ["A red fox runs."]
    assert render_question("Describe what {a_name} looks like.", "owl", "a bird") == (
        "Describe what an owl (a bird) looks like."
    )
    assert render_question("A caption of an image of a {}:", "cat") == "A caption of an image of a cat:"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A randomly initialised one-layer GPT-2 with a byte-level BPE tokenizer trained here, offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny_lm")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["Q: Describe what a cat looks like.\nA: A cat has fur and whiskers."] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(path)
    eos = fast.eos_token_id
    config = GPT2Config(vocab_size=len(fast), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=eos, eos_token_id=eos)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


def test_transformers_backend_on_tiny_gpt2(tiny_lm, files, tmp_path):
    classes, questions, _ = files
    args = ["--classes", str(classes), "--backend", "transformers", "--lm", str(tiny_lm), "--device", "cpu",
            "--questions-file", str(questions), "--per-question", "2", "--max-tokens", "12", "--temperature", "1.0"]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert prompts_main(["generate", *args, "--out", str(first)]) == 0
    bank = read_prompt_file(first)
    assert list(bank) == ["cat", "dog", "red_fox", "owl"]
    assert all(prompts and all(p.strip() == p and p and "\n" not in p for p in prompts) for prompts in bank.values())
    assert prompts_main(["generate", *args, "--out", str(second)]) == 0
    assert read_prompt_file(second) == bank  # seeded: the same bank again
