"""The command line (explorer/CONTRACT.md §3): headless commands, or the window when none is given."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import warnings
from pathlib import Path

from .core.errors import ExplorerError, strip_ansi

COMMANDS = ("run", "train", "tasks", "presets", "export-code", "devices", "doctor")
EXIT_USER_ERROR = 2


class UsageError(ExplorerError):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one `error:` line (exit 2) instead of the usage text."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _parser() -> _Parser:
    parser = _Parser(prog="rnn-explorer", description="RNN Shape Explorer: see the shapes, padding and masks "
                                                      "inside recurrent networks.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = commands.add_parser("run", help="run a stack headless and report shapes, masks and outputs")
    run.add_argument("stack", help="a .stack.json file, preset:NAME or a trained MODEL.keras (or Keras 2's MODEL.h5)")
    run.add_argument("--input", metavar="TEXTFILE | NAME=FILE", action="append",
                     help="sequence text to run instead of the file's sequences; a model of several inputs takes "
                          "NAME=FILE once per input (line i of each file is one example)")
    run.add_argument("--device", help="cpu, gpu or a device name such as /GPU:1 (default: a GPU if present)")
    run.add_argument("--json", metavar="OUT", help="write the report as JSON to OUT (- for stdout)")
    run.add_argument("--npz", metavar="OUT", help="write every layer's output, the masks and weights to OUT")
    run.add_argument("--leak-check", action="store_true",
                     help="run each sequence alone, unpadded, and report how much padding changes each layer")
    run.add_argument("--gates", action="store_true",
                     help="add the gates of every LSTM and GRU layer at every timestep to the npz")
    run.add_argument("--gradients", action="store_true",
                     help="add the norm of the output's gradient at every step, for the input and each layer, "
                          "to the npz")
    run.add_argument("--target", metavar="UNIT", type=int,
                     help="with --gradients: the output unit (default: each sequence's largest)")
    run.add_argument("--gradient-input", metavar="NAME",
                     help="with --gradients, a model of several inputs: the input whose steps grad/input is over "
                          "(default: the first sequence input)")
    run.add_argument("--trust", action="store_true", help="allow the stack's custom expressions to run")
    _custom_objects_option(run)
    _backend_option(run)
    _batching_options(run)
    _train_parser(commands)
    commands.add_parser("tasks", help="list the built-in training tasks and their rules")
    commands.add_parser("presets", help="list the built-in stacks")
    export = commands.add_parser("export-code", help="print a Keras script that builds the same stack")
    export.add_argument("stack", help="a .stack.json file, preset:NAME or a trained MODEL.keras (or Keras 2's MODEL.h5)")
    export.add_argument("--trust", action="store_true", help="allow custom expressions into the script")
    _batching_options(export)
    _custom_objects_option(export)
    _backend_option(commands.add_parser("devices", help="list the devices Keras's backend sees"))
    _doctor_parser(commands)
    return parser


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number of steps (a whole number from 1)')
    return int(text)


def _doctor_parser(commands) -> None:
    from .core.doctor import SEVERITIES
    doctor = commands.add_parser("doctor", help="check a stack or a trained model on its sequences: padding "
                                                "leaks, ignored masks, truncation, vanishing gradients, …")
    doctor.add_argument("stack", help="a .stack.json file, preset:NAME or a trained MODEL.keras (or Keras 2's MODEL.h5)")
    doctor.add_argument("--input", metavar="TEXT | NAME=FILE", action="append",
                        help="sequence text to check instead of the file's sequences; a model of several inputs takes "
                             "NAME=FILE once per input")
    doctor.add_argument("--json", metavar="OUT", help="write the findings as JSON to OUT (- for stdout)")
    doctor.add_argument("--report", metavar="OUT.html|OUT.md", help="write a report with a plot per finding: a "
                                                                    "self-contained HTML page, or Markdown with "
                                                                    "the images beside it")
    doctor.add_argument("--fail-on", choices=SEVERITIES[1:], help="exit 1 when a finding at or above this "
                                                                  "severity is present")
    doctor.add_argument("--device", help="cpu, gpu or a device name such as /GPU:1 (default: a GPU if present)")
    doctor.add_argument("--trust", action="store_true", help="allow the stack's custom expressions to run")
    _batching_options(doctor)
    _backend_option(doctor)


def _backend_option(parser: argparse.ArgumentParser) -> None:
    from .core.backend import BACKENDS, NOT_OFFERED
    parser.add_argument("--backend", choices=(*BACKENDS, *NOT_OFFERED),
                        help="Keras's backend (default: $KERAS_BACKEND, else tensorflow); jax when installed")


def _batching_options(parser: argparse.ArgumentParser) -> None:
    """--padding, --truncating, --maxlen, --pad-value: override the stack's or model's batching (as the
    pipeline's keras.utils.pad_sequences pads)."""
    parser.add_argument("--padding", choices=("pre", "post"), help="pad before or after each sequence")
    parser.add_argument("--truncating", choices=("pre", "post"), help="cut longer sequences at the start or the end")
    parser.add_argument("--maxlen", type=_positive_int, metavar="N",
                        help="pad and truncate every sequence to exactly N steps")
    parser.add_argument("--pad-value", type=_pad_value, metavar="V", help="the value of a padded step (a token id for "
                                                                     "token input)")
    from .core.leaks import MODES
    parser.add_argument("--mode", choices=MODES, help="batching mode: pad, bucket, one_by_one or chunked")


def _pad_value(text: str) -> float | int:
    """A number; a whole one stays an int (a token id)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number') from None
    return int(value) if value.is_integer() else value


def _batching(options: argparse.Namespace) -> dict:
    return {"padding": options.padding, "truncating": options.truncating, "maxlen": options.maxlen,
            "pad_value": options.pad_value, "mode": options.mode}


def _custom_objects_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--custom-objects", metavar="FILE.py",
                        help="run FILE.py (with --trust) and use the Keras layer classes it defines")


def _use_custom_objects(options: argparse.Namespace) -> None:
    """Runs the user's file of custom layer classes, only with --trust: it is code."""
    path = getattr(options, "custom_objects", None)
    if not path:
        return
    if not options.trust:
        raise UsageError(f"--custom-objects runs {path} as Python code: pass --trust as well if you trust it")
    from .core.keras_cards import load_custom_objects
    load_custom_objects(path)


def _use_backend(backend: str | None) -> None:
    """Sets Keras's backend for this process, before anything imports Keras."""
    if backend:
        from .core.backend import check_backend
        check_backend(backend)
        import os
        os.environ["KERAS_BACKEND"] = backend


def _train_parser(commands) -> None:
    from .core.train import DEFAULT_LEARNING_RATE, DEFAULT_OPTIMIZER, OPTIMIZERS
    train = commands.add_parser("train", help="train a stack on labelled sequences and report the loss per step")
    train.add_argument("stack", help="a .stack.json file, preset:NAME or a trained MODEL.keras (or Keras 2's MODEL.h5)")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="TEXT | NAME=FILE", action="append",
                        help="labelled sequence text (`3 14 15 | 1`) instead of the file's sequences; a model of "
                             "several inputs takes NAME=FILE once per input, the labels on one input's lines")
    source.add_argument("--task", metavar="NAME", help="generate the sequences and labels from a built-in task "
                                                       "(see `tasks`)")
    train.add_argument("--count", type=int, default=64, metavar="N", help="sequences a task generates (default 64)")
    train.add_argument("--steps", type=int, required=True, metavar="N", help="optimizer steps")
    train.add_argument("--lr", type=float, default=DEFAULT_LEARNING_RATE, metavar="X",
                       help=f"learning rate (default {DEFAULT_LEARNING_RATE})")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=DEFAULT_OPTIMIZER,
                       help=f"default {DEFAULT_OPTIMIZER}")
    train.add_argument("--device", help="cpu, gpu or a device name such as /GPU:1 (default: a GPU if present)")
    train.add_argument("--json", metavar="OUT", help="write the report as JSON to OUT (- for stdout)")
    train.add_argument("--save", metavar="OUT.stack.json", help="save the stack with its trained weights and the "
                                                                "training sequences")
    train.add_argument("--save-keras", metavar="OUT.keras", help="save the trained model as a Keras file")
    train.add_argument("--trust", action="store_true", help="allow the stack's custom expressions to run")
    _custom_objects_option(train)
    _backend_option(train)
    _batching_options(train)


def _window_parser() -> _Parser:
    parser = _Parser(prog="rnn-explorer", description="Open the explorer window (or use a command: "
                                                      + ", ".join(COMMANDS) + ").")
    parser.add_argument("stack", nargs="?", help="a .stack.json file or preset:NAME to open")
    parser.add_argument("--screenshot", metavar="PNG", help="render the window offscreen after one run, save it, exit")
    parser.add_argument("--size", metavar="WxH", type=_window_size,
                        help="the window's size in pixels, e.g. 1280x800 (--screenshot: default 1600x1000)")
    parser.add_argument("--scale", metavar="S", type=_scale,
                        help="presentation scale of the text, tables and plot labels, e.g. 1.5 (Ctrl+= in the window)")
    _backend_option(parser)
    return parser


MIN_WINDOW, MAX_WINDOW = (320, 240), (7680, 4320)


def _window_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f'"{text}" is not a size: write WIDTHxHEIGHT in pixels, e.g. 1280x800')
    width, height = (int(part) for part in parts)
    if not (MIN_WINDOW[0] <= width <= MAX_WINDOW[0] and MIN_WINDOW[1] <= height <= MAX_WINDOW[1]):
        raise argparse.ArgumentTypeError(f"{width}x{height} is out of range: from {MIN_WINDOW[0]}x{MIN_WINDOW[1]} to "
                                         f"{MAX_WINDOW[0]}x{MAX_WINDOW[1]}")
    return width, height


def _scale(text: str) -> float:
    from .qt.layout import SCALES
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not SCALES[0] <= value <= SCALES[-1]:
        raise argparse.ArgumentTypeError(f'"{text}" is not a scale from {SCALES[0]} to {SCALES[-1]}, e.g. 1.5')
    return value


def main(argv: list[str] | None = None) -> int:
    own_process = argv is None    # the program itself, not a caller in its own process (a notebook, a test)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        for argument in argv:
            if "\0" in argument:  # no file name, device or number holds one; the OS refuses them anyway
                raise UsageError(f"the argument {argument!r} holds a NUL character")
        if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help")):
            with warnings.catch_warnings(record=True) as caught:   # the libraries' warnings: one note at the end
                warnings.simplefilter("default")
                options = _parser().parse_args(argv)
                if own_process and options.command in ("run", "train"):   # the window's engine's memory limit
                    from .engine.client import ENGINE_MEMORY_LIMIT_MB
                    from .engine.process import limit_memory
                    limit_memory(ENGINE_MEMORY_LIMIT_MB)
                status = _command(options)
            if caught:
                more = f" (and {len(caught) - 1} more)" if len(caught) > 1 else ""
                print(f"note: a library warned: {_one_line(str(caught[0].message))}{more}", file=sys.stderr)
            return status
        options = _window_parser().parse_args(argv)
        _use_backend(options.backend)
        from .qt.app import open_window
        return open_window(options.stack, screenshot=options.screenshot, size=options.size, scale=options.scale,
                           backend=options.backend)
    except ExplorerError as error:
        print(f"error: {_one_line(error.message)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("error: out of memory (more than the command line may use): shorten the sequences, set maxlen or "
              "lower the units", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


def _one_line(message: str) -> str:
    """One line of text: runs of whitespace become one space, other control characters are escaped (\\x00),
    and numbers longer than a screen line are cut (12345…(4000 digits))."""
    text = " ".join(strip_ansi(message).split())
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return _LONG_NUMBER.sub(lambda m: f"{m.group()[:12]}…({len(m.group())} digits)", text)


_LONG_NUMBER = re.compile(r"\d{40,}")


def _command(options: argparse.Namespace) -> int:
    _use_backend(getattr(options, "backend", None))
    _use_custom_objects(options)
    if options.command == "presets":
        return _presets()
    if options.command == "devices":
        from .core import backend
        for device in backend.list_devices():
            print(f"{device.name}\t{device.kind}\t{device.description}")
        return 0
    if options.command == "export-code":
        from .core.codegen import export_code
        from .core.presets import is_keras_model, is_preset
        stack = _prepare(options.stack, None, options).spec
        if stack.has_custom() and not (options.trust or is_preset(options.stack)):
            from .core.errors import TrustError
            raise TrustError("this stack has a custom expression, which the exported script runs as code: export "
                             "it only if you trust its source (--trust)")
        sys.stdout.write(export_code(stack, weights_from=options.stack if is_keras_model(options.stack) else None))
        return 0
    if options.command == "run":
        return _run(options)
    if options.command == "train":
        return _train(options)
    if options.command == "doctor":
        return _doctor(options)
    if options.command == "tasks":
        from .core.tasks import TASKS
        for task in TASKS.values():
            print(f"{task.name:<14} {task.input_kind:<9} {task.rule.format(k='k')}")
        return 0
    _parser().print_help()
    return 0


def _presets() -> int:
    from .core.presets import load_preset, names
    for name in names():
        preset = load_preset(name)
        print(f"{name:<22} {preset.title or ''}")
    return 0


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")   # a byte-order mark, as some editors write, is dropped
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a UTF-8 text file") from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None


def _prepare(reference: str, inputs: str | list[str] | None, options: argparse.Namespace):
    """The stack of a file, a preset or a .keras model with the batching options, and the sequence text of
    `inputs` (--input: one TEXTFILE, or NAME=FILE once per input of a several-input model; default: the stack's
    sequences); the import's notes go to stderr."""
    from .core.errors import SpecError
    from .library import _load_model, complete
    batching = _batching(options)
    spec, notes, trust, imported = _load_model(reference, options.trust)
    text = _input_texts([inputs] if isinstance(inputs, str) else inputs or [], spec)
    try:
        prepared = complete(spec, text, notes=notes, trust=trust, imported=imported, **batching)
    except SpecError as error:
        key = error.path.removeprefix("batching.")
        if batching.get(key) is None:
            raise
        raise UsageError(f"--{key.replace('_', '-')}: {error.problem}") from None
    for note in prepared.notes:
        print(f"note: {_one_line(note)}", file=sys.stderr)
    return prepared


def _input_texts(values: list[str], spec) -> str | dict[str, str] | None:
    """The texts of --input: one TEXTFILE for a one-input model; NAME=FILE once per input of several."""
    if not values:
        return None
    if not spec.more_inputs:
        if len(values) > 1:
            raise UsageError(f"--input is given {len(values)} times, but this model takes one input: give it once")
        return _read_text(values[0])
    names = [item.name for item in spec.all_inputs()]
    texts: dict[str, str] = {}
    for value in values:
        name, equals, path = value.partition("=")
        if not equals or not name or not path:
            raise UsageError(f"--input {value}: this model takes {len(names)} inputs ({', '.join(names)}): write "
                             "--input NAME=FILE once per input")
        if name not in names:
            raise UsageError(f"--input {value}: the model has no input {name!r}; its inputs: {', '.join(names)}")
        if name in texts:
            raise UsageError(f"--input {name}=… is given twice: give each input once")
        texts[name] = _read_text(path)
    missing = [name for name, text in spec.texts(texts).items() if text is None]
    if missing:
        raise UsageError(f"no sequences for the input{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                         + " ".join(f"pass --input {name}=FILE" for name in missing))
    return texts


def _run(options: argparse.Namespace) -> int:
    if (options.gates or options.gradients) and not options.npz:
        raise UsageError("--gates and --gradients add arrays to the npz file: pass --npz OUT as well")
    if options.target is not None and not options.gradients:
        raise UsageError("--target picks the output unit of --gradients: pass --gradients as well")
    if options.gradient_input is not None and not options.gradients:
        raise UsageError("--gradient-input picks the input of --gradients: pass --gradients as well")
    from .library import run_prepared
    prepared = _prepare(options.stack, options.input, options)
    if prepared.text is None:
        raise UsageError(f"{options.stack} holds no sequences: pass --input TEXTFILE")
    inspected = run_prepared(prepared, device=options.device, gates=options.gates, gradients=options.gradients,
                             target=options.target, leak_check=options.leak_check,
                             gradient_input=options.gradient_input)
    report = inspected.to_json()
    if options.npz:
        _write_npz(options.npz, inspected.arrays())
    if options.json:
        document = json.dumps(report, indent=2) + "\n"
        if options.json == "-":
            sys.stdout.write(document)
        else:
            _write_file(options.json, document.encode("utf-8"))
    if not options.json and not options.npz:
        sys.stdout.write(_summary(report))
    return 0


def _doctor(options: argparse.Namespace) -> int:
    report_path = Path(options.report) if options.report else None
    if report_path is not None and report_path.suffix.lower() not in (".html", ".htm", ".md"):
        raise UsageError(f"--report {options.report}: the name must end in .html or .md")
    from .core.presets import is_preset
    prepared = _prepare(options.stack, options.input, options)
    if prepared.text is None:
        raise UsageError(f"{options.stack} holds no sequences: pass --input TEXTFILE")
    from .core.doctor import examine
    from .core.run import Engine
    report = examine(Engine(), prepared.spec, prepared.text, device=options.device, trust=prepared.trust)
    report.title = Path(options.stack).name if not is_preset(options.stack) else options.stack
    if options.json:
        document = json.dumps(report.to_json(), indent=2) + "\n"
        if options.json == "-":
            sys.stdout.write(document)
        else:
            _write_file(options.json, document.encode("utf-8"))
    if report_path is not None:
        if report_path.suffix.lower() == ".md":
            try:
                document = report.to_markdown(report_path.parent, prefix=report_path.stem + "-")
            except OSError as error:
                raise UsageError(f"cannot write the images beside {report_path}: {error.strerror or error}") from None
        else:
            document = report.to_html()
        _write_file(str(report_path), document.encode("utf-8"))
    if options.json != "-":
        for finding in report.findings:
            where = finding.layer or "input"
            print(f"{finding.severity}: {finding.kind} ({where}): {finding.message}"
                  + (f" — fix: {finding.fix}" if finding.fix else ""))
        print(f"checked: {', '.join(report.checked)}"
              + "".join(f"; not checked: {kind} ({why})" for kind, why in report.skipped.items()))
    return 1 if options.fail_on and report.at_least(options.fail_on) else 0


def _train(options: argparse.Namespace) -> int:
    from .core.train import TrainSettings, report, train
    prepared = _prepare(options.stack, None, options)
    stack = prepared.spec
    if options.save_keras and not options.save_keras.endswith(".keras"):
        raise UsageError(f"--save-keras needs a file name ending in .keras, got {options.save_keras}")
    from .core.run import Engine
    engine = Engine()
    if options.task:
        from .core import tasks
        classes = _head_classes(stack)
        text = (tasks.generate_inputs(options.task, options.count, stack.all_inputs(), seed=stack.seed,
                                      classes=classes) if stack.more_inputs else
                tasks.generate(options.task, options.count, stack.input, seed=stack.seed, classes=classes))
    else:
        text = _input_texts(options.input or [], stack)
        if text is None and not stack.more_inputs:
            text = stack.sequences
        if not text and not stack.more_inputs:
            raise UsageError(f"{options.stack} holds no sequences: pass --input TEXT or --task NAME")
    trust = prepared.trust
    progress, result = train(engine, stack, text, TrainSettings(options.optimizer, options.lr), steps=options.steps,
                             device=options.device, trust=trust)
    document = report(progress, result)
    trained = progress.spec
    if isinstance(text, dict):   # several inputs: each one's text
        trained.sequences = text.get(trained.input.name, trained.sequences)
        trained.more_sequences = {**trained.more_sequences, **{k: v for k, v in text.items() if k != trained.input.name}}
    elif text is not None:
        trained.sequences = text
    if options.save:
        from .core.spec import dumps
        _write_file(options.save, dumps(trained).encode("utf-8"))
    if options.save_keras:
        from .core import keras_io
        try:
            keras_io.export_model(engine.built_for(trained), options.save_keras)
        except OSError as error:
            raise UsageError(f"cannot write {options.save_keras}: {error.strerror or error}") from None
    if options.json:
        text_out = json.dumps(document, indent=2) + "\n"
        if options.json == "-":
            sys.stdout.write(text_out)
        else:
            _write_file(options.json, text_out.encode("utf-8"))
    else:
        accuracy = document.get("accuracy")
        print(f"{progress.objective.description}\n{options.optimizer}, learning rate {options.lr:g}: "
              f"{document['steps']} steps in {document['seconds']:.2f} s, loss {progress.loss[0]:.4f} → "
              f"{progress.loss[-1]:.4f}" + (f", accuracy {accuracy[0]:.3f} → {accuracy[-1]:.3f}" if accuracy else ""))
    return 0


def _head_classes(stack) -> int | None:
    """The softmax head's classes (for a task's k), read from the document: None if the head is no softmax."""
    head = stack.layers[-1] if stack.layers else None
    if head is not None and head.type in ("dense", "time_distributed_dense") and head.params.get("activation") == "softmax":
        return head.params["units"]
    return None


def _write_file(path: str, data: bytes) -> None:
    from .core.spec import write_bytes_atomic
    try:
        write_bytes_atomic(Path(path), data)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def _write_npz(path: str, arrays: dict) -> None:
    import numpy as np
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_file(path, buffer.getvalue())


def _summary(report: dict) -> str:
    from .core.diagnose import format_shape
    batch = format_shape(report["batch"]["padded_shape"])
    if "inputs" in report:   # several inputs: each one's padded batch
        batch = ", ".join(f"{name} {format_shape(item['padded_shape'])}" for name, item in report["inputs"].items())
    rows = [f"device {report['device']}, mode {report['mode']}, batch {batch}, {report['timing_ms']['run']:.1f} ms", ""]
    rows.append(f"{'layer':<28} {'symbolic':<18} {'this batch':<16} {'mask':<9} params")
    for layer in report["layers"]:
        symbolic, shape = format_shape(layer["symbolic_shape"]), format_shape(layer["shape"])
        rows.append(f"{layer['name']:<28} {symbolic:<18} {shape:<16} {layer['mask_role']:<9} {layer['params']}")
        for state in layer.get("states", []):
            fed = " → next layer" if state["name"] == layer.get("feeds") else ""
            rows.append(f"{'  state ' + state['name']:<28} {format_shape(state['symbolic_shape']):<18} "
                        f"{format_shape(state['shape']):<16}{fed}")
    for fc in report["fc_inputs"]:     # one per head
        rows += ["", f"FC input of {fc['layer']}: {format_shape(fc['symbolic_shape'])}, this batch "
                     f"{format_shape(fc['shape'])}", f"  {fc['explanation']}"]
    for warning in report["warnings"]:
        rows.append(f"warning: {warning}")
    leak = report.get("leak_check")
    if leak:
        rows += ["", f"leak check: {leak['verdict']}"]
    return "\n".join(rows) + "\n"
