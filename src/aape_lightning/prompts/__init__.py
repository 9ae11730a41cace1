"""Prompt-bank generation: ask a language model CuPL-style questions about each class."""

from aape_lightning.prompts.backends import Backend, GenerationError, OpenAIBackend, TransformersBackend
from aape_lightning.prompts.cleaning import clean_answer, clean_answers
from aape_lightning.prompts.generate import generate_bank, read_class_list
from aape_lightning.prompts.prompts_cli import prompts_main
from aape_lightning.prompts.questions import DEFAULT_QUESTIONS, read_questions_file, render_question

__all__ = [
    "DEFAULT_QUESTIONS",
    "Backend",
    "GenerationError",
    "OpenAIBackend",
    "TransformersBackend",
    "clean_answer",
    "clean_answers",
    "generate_bank",
    "prompts_main",
    "read_class_list",
    "read_questions_file",
    "render_question",
]
