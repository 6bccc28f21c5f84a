"""`proctor ask QUESTION`: stream one answer to stdout.

Exit 0 only with an answer: a model that never answers (garbled replies, timeouts, after retries) or answers with
nothing exits 1; a setting that cannot work (bad key, unreachable URL) exits 2.
"""

from __future__ import annotations

import argparse
import sys

NAME = "ask"
ORDER = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="ask the model one question; the answer streams to stdout",
                                   description="Ask the model one question; the answer streams to stdout.")
    parser.add_argument("question", help="the question ('-' reads it from stdin)")
    parser.add_argument("--model", "-m", help="model URI: azure:/DEPLOYMENT, openai:/MODEL or local:/smollm2")
    parser.add_argument("--system", "-s", help="system prompt (default: PROCTOR_SYSTEM_PROMPT, else none)")
    parser.add_argument("--temperature", "-t", type=float,
                        help="sampling temperature (default: PROCTOR_TEMPERATURE, else 0)")
    parser.add_argument("--raw", action="store_true",
                        help="print the answer's bytes as received, control characters included (for pipes); "
                             "by default escape sequences are shown as ␛ and other control characters removed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.config import load_settings
    from core.errors import InputError, LLMError
    from core.llm import stream_chat

    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise InputError("the question is empty")
    settings = load_settings()
    stream = stream_chat(question, args.model, settings=settings, system_prompt=args.system,
                         temperature=args.temperature)
    if stream.spec.provider == "local":
        from core.local_model import DEMO_WARNING

        print(DEMO_WARNING, file=sys.stderr)
    from core.safety import PrintableStream

    # The model's words may hold escape sequences: shown harmless (␛) unless --raw asks for them as they are.
    clean = (lambda piece: piece) if args.raw else PrintableStream().feed
    for piece in stream:
        sys.stdout.write(clean(piece))
        sys.stdout.flush()
    if not stream.text:
        raise LLMError(f"{stream.spec.uri} gave an empty answer (finish reason: {stream.finish_reason or 'none'})")
    sys.stdout.write("\n")
    return 0
