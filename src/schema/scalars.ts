// Scalars: DateTime (ISO 8601 strings, UTC on output) and File (a multipart upload, input only).

import { GraphQLError, Kind } from 'graphql';
import { builder } from '../builder.ts';

function parseDate(value: unknown): Date {
  const d = typeof value === 'string' ? new Date(value) : null;
  if (!d || Number.isNaN(d.getTime())) throw new GraphQLError(`DateTime: expected an ISO 8601 date-time string, got ${JSON.stringify(value)}`);
  return d;
}

builder.scalarType('DateTime', {
  description: 'An instant as an ISO 8601 string (output in UTC, e.g. 2025-01-31T12:00:00.000Z).',
  serialize: (d) => d.toISOString(),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
});

builder.scalarType('File', {
  description: 'A file uploaded with the GraphQL multipart request (operations, map, then the files).',
  serialize: () => {
    throw new GraphQLError('File is an input-only scalar');
  },
  parseValue: (value) => {
    const f = value as File | null;
    if (!f || typeof f !== 'object' || typeof f.arrayBuffer !== 'function' || typeof f.size !== 'number') {
      throw new GraphQLError('File: expected an uploaded file (send the request as multipart/form-data)');
    }
    return f;
  },
});
