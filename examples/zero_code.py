"""Zero-code setup through the OpenTelemetry SDK's own configurator, the path
`opentelemetry-instrument` takes. Run:  python examples/zero_code.py

Equivalent to:
  OTEL_TRACES_SAMPLER=tracesieve OTEL_TRACES_SAMPLER_ARG=examples/example_pipeline.toml \\
  opentelemetry-instrument python app.py
"""

import os
from pathlib import Path

os.environ.setdefault("OTEL_TRACES_SAMPLER", "tracesieve")
os.environ.setdefault("OTEL_TRACES_SAMPLER_ARG", str(Path(__file__).with_name("example_pipeline.toml")))
os.environ.setdefault("OTEL_TRACES_EXPORTER", "console")
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")

from opentelemetry import trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

_OTelSDKConfigurator().configure()
provider = trace.get_tracer_provider()
print("sampler:", provider.sampler.get_description())
tracer = trace.get_tracer("zero-code-example")
with tracer.start_as_current_span("charge", attributes={"business.event": "payment", "payment.amount": 25}):
    pass  # a business event: always kept, printed by the console exporter below
provider.force_flush()
