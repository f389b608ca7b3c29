// A Node program to run under ollama-tui: the OpenTelemetry JS SDK set up from the environment alone (NodeSDK
// reads OTEL_TRACES_EXPORTER, the OTLP endpoint and protocol), two spans, a line of output, a clean shutdown.
// Needs @opentelemetry/api and @opentelemetry/sdk-node, at the versions package-lock.json here pins: `make test`
// installs them into node_modules beside this file (npm ci --prefix tests/programs), where node looks first.
'use strict';

const api = require('@opentelemetry/api');
const { NodeSDK } = require('@opentelemetry/sdk-node');

const sdk = new NodeSDK();
sdk.start();
const tracer = api.trace.getTracer('traced-app-node');
tracer.startActiveSpan('node job', (job) => {
  tracer.startActiveSpan('node step', (step) => step.end());
  job.end();
});
sdk.shutdown().then(() => console.log('node done'));
