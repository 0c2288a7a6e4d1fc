"""Logging: Powertools `Logger` (structured JSON, the run id as correlation id) in Lambda.

The core logs through stdlib loggers named `runwire.*`; this routes them through the Powertools
formatter so every line is one JSON object with the same keys.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers


def configure_lambda_logging(service: str) -> Logger:
    logger = Logger(service=service)
    logging.getLogger("runwire").setLevel(logger.log_level)
    copy_config_to_registered_loggers(source_logger=logger, include={"runwire"})
    return logger
