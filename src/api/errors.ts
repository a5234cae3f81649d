// The typed refusal of an object by validation or admission: which fields, and why. Callers word it for their
// audience (the CLI prints the message; the API server turns it into a 422 Invalid Status with one cause per field).

export interface FieldCause {
  /** `spec.containers[0].command`. */
  field: string;
  /** kube-apiserver's text after the field: `Required value`, `Invalid value: "x": …`. */
  message: string;
}

export class InvalidObjectError extends Error {
  constructor(
    readonly kind: string,
    readonly objectName: string,
    readonly causes: FieldCause[],
  ) {
    const lines = causes.map((c) => `${c.field}: ${c.message}`);
    super(lines.length === 1 ? `The ${kind} "${objectName}" is invalid: ${lines[0]}` : `The ${kind} "${objectName}" is invalid: \n${lines.map((l) => `* ${l}`).join('\n')}`);
  }
}
