// Pipeline options in the API: key/value pairs (keys and ranges as in the core's option table).

import { builder } from '../builder.ts';
import type { OptionPair } from '../service/options.ts';

export const OptionInput = builder.inputType('OptionInput', {
  description: 'One pipeline option, e.g. {key: "classifier.epochs", value: "30"} (lists comma-separated: "1,2,4").',
  fields: (t) => ({
    key: t.string({ required: true }),
    value: t.string({ required: true }),
  }),
});

export const OptionValue = builder.objectRef<OptionPair>('OptionValue').implement({
  description: 'An option override, as normalized when it was validated.',
  fields: (t) => ({
    key: t.exposeString('key'),
    value: t.exposeString('value'),
  }),
});
