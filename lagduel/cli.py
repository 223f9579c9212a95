"""The `lagduel` command: parses arguments, shows progress, calls the layers below. No logic here."""

from __future__ import annotations

import click

from lagduel import __version__
from lagduel.logs import configure


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lagduel")
@click.option("-v", "--verbose", count=True,
              help="More on the terminal (-v warnings, -vv info); the full log always goes to a file.")
def main(verbose: int) -> None:
    """Run Kafka stream processing on Knative Eventing and on OpenFaaS+KEDA, and measure which keeps up
    and which recovers faster from consumer lag.

    \b
    Quick start:
      lagduel kafka up                         start a real Kafka broker in the background
      lagduel run --backend native --events 10000
      lagduel duel --profile burst             compare the backends, write a report
      lagduel kafka down
    """
    configure(verbose)


# Commands: one module each, registered here.
from lagduel.kafka_cmd import kafka  # noqa: E402
from lagduel.run_cmd import run  # noqa: E402

main.add_command(kafka)
main.add_command(run)
# -- more commands below this line --
from lagduel.load_cmd import load  # noqa: E402
main.add_command(load)
from lagduel.duel_cmd import duel  # noqa: E402
main.add_command(duel)
from lagduel.compare_cmd import compare  # noqa: E402
main.add_command(compare)
from lagduel.connector_cmd import connector  # noqa: E402

main.add_command(connector)
from lagduel.deploy_cmd import deploy  # noqa: E402

main.add_command(deploy)
from lagduel.simulate_cmd import simulate  # noqa: E402

main.add_command(simulate)
from lagduel.advise_cmd import advise_cmd  # noqa: E402

main.add_command(advise_cmd)
