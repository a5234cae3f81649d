// Kubernetes' error replies: a `Status` object with the HTTP code, a reason kubectl switches on and the message it
// prints (`Error from server (NotFound): pods "x" not found`). Every failure of the API server is an ApiError, so
// clients see the texts they know from kube-apiserver.
import { qualifiedResource, type ResourceType } from '../api/kinds.js';

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  status(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

type Named = Pick<ResourceType, 'plural' | 'group'>;

function details(t: Named, name?: string): StatusDetails {
  return { ...(name !== undefined ? { name } : {}), group: t.group, kind: t.plural };
}

export const notFound = (t: Named, name: string) => new ApiError(404, 'NotFound', `${qualifiedResource(t)} "${name}" not found`, details(t, name));

export const alreadyExists = (t: Named, name: string) =>
  new ApiError(409, 'AlreadyExists', `${qualifiedResource(t)} "${name}" already exists`, details(t, name));

export const conflict = (t: Named, name: string) =>
  new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    details(t, name),
  );

/** 422: `Pod "x" is invalid: spec.containers[0].image: Required value` (one cause per field). */
export function invalid(t: Pick<ResourceType, 'kind' | 'group' | 'plural'>, name: string, causes: StatusCause[]): ApiError {
  const text = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const message = text.length === 1 ? `${t.kind}${t.group ? `.${t.group}` : ''} "${name}" is invalid: ${text[0]}` : `${t.kind}${t.group ? `.${t.group}` : ''} "${name}" is invalid: [${text.join(', ')}]`;
  return new ApiError(422, 'Invalid', message, { name, group: t.group, kind: t.kind, causes: causes.map((c) => ({ reason: c.reason ?? 'FieldValueInvalid', ...c })) });
}

export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);

export const methodNotAllowed = () => new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');

export const pathNotFound = () => new ApiError(404, 'NotFound', 'the server could not find the requested resource');

/**
 * 403 as kube-apiserver's authorizer words it: `pods "web" is forbidden: User "u" cannot get resource "pods" in API
 * group "" in the namespace "default"` (`at the cluster scope` for cluster-wide requests).
 */
export function forbidden(user: string, verb: string, t: Pick<ResourceType, 'plural' | 'group'>, subresource: string | undefined, namespace: string | undefined, name: string | undefined): ApiError {
  const resource = subresource ? `${t.plural}/${subresource}` : t.plural;
  const what = name ? `${qualifiedResource(t)} "${name}"` : qualifiedResource(t);
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  return new ApiError(403, 'Forbidden', `${what} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${t.group}" ${scope}`, details(t, name));
}

/** kube's NewForbidden: `<resource> "<name>" is forbidden: <reason>`. */
export function forbiddenObject(t: Pick<ResourceType, 'plural' | 'group'>, name: string, reason: string): ApiError {
  return new ApiError(403, 'Forbidden', `${qualifiedResource(t)} "${name}" is forbidden: ${reason}`, details(t, name));
}

export const unauthorized = () => new ApiError(401, 'Unauthorized', 'Unauthorized');

export const expired = (requested: number | string, oldest: number) =>
  new ApiError(410, 'Expired', `too old resource version: ${requested} (${oldest})`);

/**
 * A watch from a resourceVersion this server never issued. kube-apiserver's versions only grow, so it waits for its
 * cache to catch up and then answers 504 "Too large resource version"; here such a version comes from a store that
 * restarted and will never catch up, so the answer is 410, on which every client (client-go, client-node) lists again.
 */
export const unknownVersion = (requested: number, current: number) =>
  new ApiError(410, 'Expired', `Too large resource version: ${requested}, current: ${current}`);

export const unsupportedMediaType = (accepted: string[]) =>
  new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);

export const tooLarge = (limit: number) => new ApiError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`);
