// Ships log records with the official OpenTelemetry JavaScript SDK and OTLP/HTTP exporter
// (JSON encoding), exactly as a Node.js service would; e2e/test_otlp.py checks they are tracked.
// Env: OTLP_BASE_URL, OTLP_HEADERS ("Name=value,..."), OTLP_SERVICE, OTLP_RUN, OTLP_COUNT.
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";

const env = process.env;
const headers = Object.fromEntries(
  (env.OTLP_HEADERS || "").split(",").filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    return [pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())];
  }),
);
const exporter = new OTLPLogExporter({ url: `${env.OTLP_BASE_URL}/v1/logs`, headers });
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ "service.name": env.OTLP_SERVICE }),
  processors: [new BatchLogRecordProcessor({ exporter })],
});
const logger = provider.getLogger("e2e");
const count = Number(env.OTLP_COUNT || "100");
for (let i = 0; i < count; i += 1) {
  logger.emit({
    severityNumber: SeverityNumber.WARN,
    severityText: "WARN",
    body: `js ${env.OTLP_RUN} record ${i}`,
    attributes: { "e2e.run": env.OTLP_RUN, index: i },
  });
}
await provider.forceFlush();
await provider.shutdown();
console.log(`exported ${count} record(s)`);
