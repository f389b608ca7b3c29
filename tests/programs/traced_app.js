// A Node program to run under ollama-tui: the OpenTelemetry JS SDK set up from the environment alone (NodeSDK
// reads OTEL_TRACES_EXPORTER, the OTLP endpoint and protocol), two spans, a line of output, a clean shutdown.
// Needs @opentelemetry/api and @opentelemetry/sdk-node on NODE_PATH; tests never install them.
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
