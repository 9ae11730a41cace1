"""Natural-language prompts: CuPL prompt banks (reading, matching to classes) and their generation by an LLM.

Light to import: language models and sentence encoders load only when used.
"""

from aape_lightning.errors import PromptBankError, SentenceEncoderUnavailable
from aape_lightning.prompts.backends import Backend, GenerationError, OpenAIBackend, TransformersBackend
from aape_lightning.prompts.bank import pad_prompt_embeddings, read_prompt_file
from aape_lightning.prompts.cleaning import clean_answer, clean_answers
from aape_lightning.prompts.cli import prompts_main
from aape_lightning.prompts.generate import generate_bank, read_class_list
from aape_lightning.prompts.mapping import read_mapping_file
from aape_lightning.prompts.matching import PromptMatch, match_prompts
from aape_lightning.prompts.questions import DEFAULT_QUESTIONS, read_questions_file, render_question
from aape_lightning.prompts.report import log_report, write_report
from aape_lightning.prompts.resolve import resolve_prompts

__all__ = [
    "DEFAULT_QUESTIONS",
    "Backend",
    "GenerationError",
    "OpenAIBackend",
    "PromptBankError",
    "PromptMatch",
    "SentenceEncoderUnavailable",
    "TransformersBackend",
    "clean_answer",
    "clean_answers",
    "generate_bank",
    "log_report",
    "match_prompts",
    "pad_prompt_embeddings",
    "prompts_main",
    "read_class_list",
    "read_mapping_file",
    "read_prompt_file",
    "read_questions_file",
    "render_question",
    "resolve_prompts",
    "write_report",
]
