"""Natural-language prompts: CuPL and descriptor banks (fetching, reading, formats, matching to classes) and their
generation by an LLM.

Light to import: language models and sentence encoders load only when used.
"""

from aape_lightning.errors import PromptBankError, SentenceEncoderUnavailable
from aape_lightning.prompts.backends import Backend, GenerationError, OpenAIBackend, TransformersBackend
from aape_lightning.prompts.bank import pad_prompt_embeddings, read_prompt_file
from aape_lightning.prompts.cleaning import clean_answer, clean_answers
from aape_lightning.prompts.fetch import CUPL_BANKS, DownloadError, fetch_banks
from aape_lightning.prompts.formats import NAMED_FORMATS, check_prompt_format, prompt_formatter
from aape_lightning.prompts.generate import generate_bank, read_class_list
from aape_lightning.prompts.mapping import read_mapping_file, shipped_mapping_path, shipped_mapping_paths
from aape_lightning.prompts.matching import PromptMatch, match_prompts
from aape_lightning.prompts.questions import DEFAULT_QUESTIONS, read_questions_file, render_question
from aape_lightning.prompts.report import log_report, write_report
from aape_lightning.prompts.resolve import match_prompt_file, resolve_prompts

__all__ = [
    "CUPL_BANKS",
    "DEFAULT_QUESTIONS",
    "NAMED_FORMATS",
    "Backend",
    "DownloadError",
    "GenerationError",
    "OpenAIBackend",
    "PromptBankError",
    "PromptMatch",
    "SentenceEncoderUnavailable",
    "TransformersBackend",
    "check_prompt_format",
    "clean_answer",
    "clean_answers",
    "fetch_banks",
    "generate_bank",
    "log_report",
    "match_prompt_file",
    "match_prompts",
    "pad_prompt_embeddings",
    "prompt_formatter",
    "read_class_list",
    "read_mapping_file",
    "read_prompt_file",
    "read_questions_file",
    "render_question",
    "resolve_prompts",
    "shipped_mapping_path",
    "shipped_mapping_paths",
    "write_report",
]
