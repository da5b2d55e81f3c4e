// The GraphQL schema: every domain module registers its types on the builder; this builds the result.

import { builder } from '../builder.ts';
import './scalars.ts';
import './errors.ts';
import './options.ts';
import './product.ts';
import './inspection.ts';
import './stats.ts';
import './subscriptions.ts';
import './keys.ts';

builder.queryType({});
builder.mutationType({});

export const schema = builder.toSchema({ sortSchema: true });
