// telemetry.istio.io/v1 Telemetry: providers, tracing sampling, metric overrides and access-log filters.
import { z } from 'zod';
import { ALWAYS, checkTargetOneOf, duration, nonEmptyString, objectMeta, policyTargetReference, workloadSelector } from './common.js';

export const TELEMETRY_VERSIONS = ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1'] as const;

const providers = () => z.array(z.looseObject({ name: nonEmptyString() })).optional();
const workloadMode = () => z.enum(['CLIENT_AND_SERVER', 'CLIENT', 'SERVER']);

const ISTIO_METRICS = [
  'ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
] as const;

const tracing = z.looseObject({
  match: z.looseObject({ mode: workloadMode().optional() }).optional(),
  providers: providers(),
  randomSamplingPercentage: z.number().min(0).max(100).optional(),
  disableSpanReporting: z.boolean().optional(),
  customTags: z.record(z.string(), z.looseObject({})).optional(),
  useRequestIdForTraceSampling: z.boolean().optional(),
});

const metricSelector = z
  .looseObject({ metric: z.enum(ISTIO_METRICS).optional(), customMetric: z.string().optional(), mode: workloadMode().optional() })
  .superRefine((m, ctx) => {
    if (m.metric !== undefined && m.customMetric !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['customMetric'], message: 'only one of metric or customMetric can be set' });
    }
  }, ALWAYS);

const metrics = z.looseObject({
  providers: providers(),
  overrides: z
    .array(
      z.looseObject({
        match: metricSelector.optional(),
        disabled: z.boolean().optional(),
        tagOverrides: z.record(z.string(), z.looseObject({ operation: z.enum(['UPSERT', 'REMOVE']).optional(), value: z.string().optional() })).optional(),
      }),
    )
    .optional(),
  reportingInterval: duration().optional(),
});

const accessLogging = z.looseObject({
  match: z.looseObject({ mode: workloadMode().optional() }).optional(),
  providers: providers(),
  disabled: z.boolean().optional(),
  filter: z.looseObject({ expression: z.string().optional() }).optional(),
});

const telemetrySpec = z
  .looseObject({
    selector: workloadSelector().optional(),
    targetRef: policyTargetReference().optional(),
    targetRefs: z.array(policyTargetReference()).max(16).optional(),
    tracing: z.array(tracing).optional(),
    metrics: z.array(metrics).optional(),
    accessLogging: z.array(accessLogging).optional(),
  })
  .superRefine(checkTargetOneOf, ALWAYS);

export const telemetrySchema = z.looseObject({
  apiVersion: z.enum(TELEMETRY_VERSIONS),
  kind: z.literal('Telemetry'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: telemetrySpec.default({}),
});
