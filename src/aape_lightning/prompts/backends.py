"""Language-model backends that answer one question several times: an HTTP endpoint or a local LM.

``ask(question, n, seed)`` returns up to ``n`` raw answers. The seed is passed on (the HTTP
``seed`` field; ``torch.manual_seed`` locally) so a rerun asks the same thing the same way.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class GenerationError(RuntimeError):
    """The language model could not answer; the message says which endpoint or model and why."""


class Backend(Protocol):
    def ask(self, question: str, n: int, seed: int) -> list[str]: ...


def completion_prompt(question: str) -> str:
    """How a plain (non-chat) language model is asked: a question/answer pair to complete."""
    return f"Q: {question}\nA:"


class OpenAIBackend:
    """An OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...) over ``urllib``.

    ``api="chat"`` posts to ``{url}/chat/completions``, ``api="completions"`` to ``{url}/completions``.
    Servers that ignore ``n`` are asked again (with the next seed) until ``n`` answers arrive.
    Connection errors, 429 and 5xx are retried ``retries`` times with doubling waits.
    """

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        api: str = "chat",
        temperature: float = 0.8,
        max_tokens: int = 60,
        system_prompt: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        retry_wait: float = 1.0,
    ) -> None:
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        self.url, self.model, self.api_key, self.api = url.rstrip("/"), model, api_key, api
        self.temperature, self.max_tokens, self.system_prompt = temperature, max_tokens, system_prompt
        self.timeout, self.retries, self.retry_wait = timeout, retries, retry_wait

    def _body(self, question: str, n: int, seed: int) -> dict:
        body: dict = {"model": self.model, "n": n, "temperature": self.temperature, "max_tokens": self.max_tokens}
        body["seed"] = seed
        if self.api == "chat":
            system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            body["messages"] = system + [{"role": "user", "content": question}]
        else:
            body["prompt"] = completion_prompt(question)
            body["stop"] = ["\nQ:"]
        return body

    def _post(self, body: dict) -> dict:
        endpoint = f"{self.url}/{'chat/completions' if self.api == 'chat' else 'completions'}"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode("utf-8")
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                detail = err.read().decode("utf-8", "replace")[:300]
                retryable = err.code == 429 or err.code >= 500
                problem = f"HTTP {err.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                retryable, problem = True, f"{type(err).__name__}: {getattr(err, 'reason', err)}"
            except json.JSONDecodeError as err:
                retryable, problem = False, f"the answer is not JSON ({err})"
            if not retryable or attempt == self.retries:
                raise GenerationError(f"POST {endpoint} failed after {attempt + 1} attempt(s): {problem}")
            wait = self.retry_wait * 2**attempt
            log.warning("POST %s failed (%s); retrying in %.0f s", endpoint, problem, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _texts(self, reply: dict) -> list[str]:
        try:
            choices = reply["choices"]
            if self.api == "chat":
                return [c["message"]["content"] or "" for c in choices]
            return [c["text"] or "" for c in choices]
        except (KeyError, TypeError) as err:
            raise GenerationError(f"{self.url}: unexpected reply shape ({err!r}): {str(reply)[:300]}") from err

    def ask(self, question: str, n: int, seed: int) -> list[str]:
        answers: list[str] = []
        for attempt in range(n):  # at most n requests, even if the server returns one choice each time
            answers += self._texts(self._post(self._body(question, n - len(answers), seed + attempt)))
            if len(answers) >= n:
                break
        return answers[:n]


class TransformersBackend:
    """A local ``transformers`` causal LM (a directory or a name already in the local cache; never downloads).

    Uses the tokenizer's chat template when it has one, else the ``Q: ... A:`` completion form.
    ``temperature <= 0`` means greedy decoding, which gives one answer per question.
    """

    def __init__(
        self,
        lm: str | Path,
        temperature: float = 0.8,
        max_tokens: int = 60,
        system_prompt: str | None = None,
        device: str | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise GenerationError("the transformers backend needs torch and transformers installed") from err
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(lm), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(lm), local_files_only=True)
        except (OSError, ValueError) as err:
            raise GenerationError(
                f"cannot load a causal language model from {lm!r} ({err}); pass a local model directory "
                "(config, weights and tokenizer files) or a name already in the Hugging Face cache"
            ) from err
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.temperature, self.max_tokens, self.system_prompt = temperature, max_tokens, system_prompt
        self.lm = str(lm)

    def _prompt(self, question: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            return self.tokenizer.apply_chat_template(
                system + [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        return completion_prompt(question)

    def ask(self, question: str, n: int, seed: int) -> list[str]:
        import torch

        inputs = self.tokenizer(self._prompt(question), return_tensors="pt").to(self.device)
        sample = self.temperature > 0
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        kwargs = {"do_sample": sample, "max_new_tokens": self.max_tokens, "pad_token_id": pad}
        if sample:
            kwargs.update(temperature=self.temperature, num_return_sequences=n)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():  # the caller's RNG state is untouched
            torch.manual_seed(seed)
            out = self.model.generate(**inputs, **kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
