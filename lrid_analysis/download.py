"""Command line: fetch the public dataset of Nayebi et al. (2020) and convert it.

Run ``python -m lrid_analysis.download --help`` for the options. The work is
done by :mod:`lrid_analysis.public`; this module only parses arguments and
reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import public
from .dataset import DatasetError
from .sources import CACHE_ENV, cache_dir, public_path, resolve_data

__all__ = ["build_parser", "main"]

_EPILOG = f"""\
examples:
  python -m lrid_analysis.download
      download dataset.pkl (about 511 MB) into the cache folder, resuming an
      interrupted download, then convert it to tidy Parquet
  python -m lrid_analysis.download --from-file ~/Downloads/dataset.pkl
      convert a file fetched by hand (e.g. on a machine without internet:
      curl -fLo dataset.pkl {public.PUBLIC_URL})
  python -m lrid_analysis.download --cache-dir /data/lrid --no-convert
      only download, into another folder
  {CACHE_ENV}=/data/lrid python -m lrid_analysis.experiments ...
      later commands find data in a non-default cache through {CACHE_ENV}

The cache folder is --cache-dir, else ${CACHE_ENV}, else $XDG_CACHE_HOME/lrid
(~/.cache/lrid). The pickle is read with a restricted unpickler that only
rebuilds numpy arrays: a tampered file is refused, never executed.
"""


def build_parser():
    """The argparse parser of ``python -m lrid_analysis.download``."""
    parser = argparse.ArgumentParser(
        prog="python -m lrid_analysis.download",
        description=(
            "Download the public dataset of Nayebi et al. (NeurIPS 2020) and convert it to the\n"
            "tidy Parquet layout that lrid's experiments read. Once converted, experiments use\n"
            "it by default (--data auto picks it over the small embedded dataset)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--from-file", metavar="PATH", type=Path,
                        help="convert this local dataset.pkl instead of downloading")
    parser.add_argument("--cache-dir", metavar="DIR", type=Path,
                        help=f"folder for the download and the converted data (default: ${CACHE_ENV} or ~/.cache/lrid)")
    parser.add_argument("--url", default=public.PUBLIC_URL, help="address of dataset.pkl (default: %(default)s)")
    parser.add_argument("--no-convert", action="store_true", help="download only, do not convert")
    parser.add_argument("--force", action="store_true",
                        help="download and convert again even if the files are already there")
    parser.add_argument("--expected-size", metavar="BYTES", type=int,
                        help="fail unless the downloaded file has exactly this many bytes")
    parser.add_argument("--no-strict", action="store_true",
                        help="accept a partial file (skip the 20,736-row and rule-balance checks)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="network timeout in seconds (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _say(message):
    print(message, flush=True)


def _run(args):
    cache = args.cache_dir
    out_dir = public_path(cache)
    if args.from_file is not None:
        pkl = args.from_file.expanduser()
        if not pkl.is_file():
            raise FileNotFoundError(f"--from-file {pkl}: no such file")
    else:
        pkl = public.default_pickle_path(cache)
        present = pkl.is_file() and not args.force
        if present:
            _say(f"dataset.pkl already downloaded: {pkl}")
        else:
            _say(f"downloading {args.url}\n         to {pkl}")
        public.download_public(args.url, dest=pkl, force=args.force, expected_size=args.expected_size,
                               timeout=args.timeout, progress=not args.quiet)
        if not present:
            _say(f"downloaded: {pkl} ({pkl.stat().st_size:,} bytes)")
        if args.no_convert:
            return
        if present and (out_dir / f"source={public.SOURCE}" / "part-0.parquet").is_file():
            _say(f"already converted: {out_dir} (use --force to download and convert again)")
            _report_default(cache, out_dir)
            return
    _say(f"converting {pkl} (restricted unpickler: numpy arrays only)")
    path = public.convert_public(pkl, out_dir, strict=not args.no_strict)
    _say(f"wrote tidy Parquet: {path}")
    _report_default(cache, out_dir)


def _report_default(cache, out_dir):
    # resolve_data is what experiments call with --data auto
    found, description = resolve_data("auto", cache=cache)
    if Path(found) == Path(out_dir):
        _say(f"experiments now use the public data by default (--data auto): {description}")
    if cache is not None and cache_dir() != cache_dir(cache):
        _say(f"this is not the default cache folder: set {CACHE_ENV}={Path(cache).expanduser()} "
             "(or pass the same cache) so that later commands find it")


def main(argv=None):
    """Entry point; returns the exit status (0 on success, 1 on error, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume the download", file=sys.stderr)
        return 130
    except (public.DownloadError, public.UnsafePickleError, DatasetError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
