// Expected failures in the schema: an `Error` interface (code + message) and one type per expected code,
// returned in the mutations' result unions. A `TttError` from any layer is matched to its type by code.
// Anything else is unexpected: masked by the server (see server/yoga.ts) and logged.

import { TttError, type ErrorCode } from '../core/errors.ts';
import { builder } from '../builder.ts';

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'Stable codes of expected failures (also the error code of a FAILED inspection).',
  values: [
    'INVALID_INPUT',
    'UNSUPPORTED_FORMAT',
    'SIZE_MISMATCH',
    'NON_FINITE',
    'CONSTANT_MAP',
    'TOO_LARGE',
    'NOT_FOUND',
    'INVALID_OPTION',
    'QUEUE_FULL',
    'DEVICE_LOST',
    'TIMEOUT',
    'NO_ADAPTER',
    'INTERNAL',
  ] as const satisfies readonly ErrorCode[],
});

export const ErrorInterface = builder.interfaceRef<TttError>('Error').implement({
  description: 'An expected failure: what went wrong, naming the input concerned.',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, resolve: (e) => e.code }),
    message: t.exposeString('message'),
  }),
});

type ErrorClass = new (message: string) => TttError;

/** A class whose `instanceof` matches every TttError with the given code (however it was constructed). */
function classFor(code: ErrorCode): ErrorClass {
  return class extends TttError {
    constructor(message: string) {
      super(code, message);
    }
    static override [Symbol.hasInstance](value: unknown): boolean {
      return value instanceof TttError && value.code === code;
    }
  };
}

const EXPECTED: [code: ErrorCode, typeName: string, description: string][] = [
  ['NOT_FOUND', 'NotFoundError', 'No object has the given id.'],
  ['INVALID_INPUT', 'InvalidInputError', 'An argument is missing, malformed or inconsistent.'],
  ['INVALID_OPTION', 'InvalidOptionError', 'An option key is unknown or its value is out of range.'],
  ['UNSUPPORTED_FORMAT', 'UnsupportedFormatError', 'An uploaded file is not in a format the service reads.'],
  ['SIZE_MISMATCH', 'SizeMismatchError', 'Uploaded maps or masks do not fit the image (size or aspect ratio).'],
  ['NON_FINITE', 'NonFiniteError', 'A map contains NaN or infinite values.'],
  ['CONSTANT_MAP', 'ConstantMapError', 'The score map is constant: it carries no evidence to segment.'],
  ['TOO_LARGE', 'TooLargeError', 'An upload or image exceeds the configured limit.'],
  ['QUEUE_FULL', 'QueueFullError', 'The processing queue holds MAX_QUEUE_DEPTH inspections (queued or running): nothing was stored; retry later.'],
];

/** The error classes every mutation returns as typed results. */
export const EXPECTED_ERRORS: ErrorClass[] = EXPECTED.map(([code, name, description]) => {
  const cls = classFor(code);
  builder.objectType(cls, {
    name,
    description,
    interfaces: [ErrorInterface],
    isTypeOf: (value) => value instanceof cls,
    fields: () => ({}),
  });
  return cls;
});

/** Options of a mutation field's `errors`: result type `<Name>Success` with the data under `field`. */
export function mutationErrors(name: string, field: string) {
  return {
    types: EXPECTED_ERRORS,
    union: { name: `${name}Result` },
    result: { name: `${name}Success` },
    dataField: { name: field },
  };
}
