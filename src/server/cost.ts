// The query cost limit, computed from the values an operation actually runs with: its variables are coerced
// first, so `inspections(first: $n)` costs what `inspections(first: 500)` costs when n is 500.
//
// A document's cost is a bound on the field values its response can hold:
// - every selected field costs 1 (`__typename` too);
// - a field with a selection adds the cost of that selection once per object it can return: for a list
//   inside a page (a connection's `edges`) the page size, i.e. the connection's `first` or `last` as used
//   (the larger when both are given), or its default page size when neither is; once for anything else
//   (single objects, and lists whose length the stored data bounds: products, keys, regions, options);
// - fragments count wherever they are spread; `@include`/`@skip` are ignored (the bound assumes both).

import {
  getArgumentValues,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isCompositeType,
  isListType,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface CostOptions {
  /** Items of a page when a connection is asked for without `first` or `last`. */
  defaultPageSize: number;
}

function fieldDef(schema: GraphQLSchema, parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
  if (parent === schema.getQueryType()) {
    if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
    if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
  }
  return 'getFields' in parent ? parent.getFields()[name] : undefined;
}

/**
 * The cost of the operation with these (uncoerced) variables, or null when it cannot be costed because
 * its variables do not coerce or it names no operation: execution then reports that itself.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
  options: CostOptions,
): number | null {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return null;
  const root = schema.getRootType(operation.operation);
  if (!root) return null;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {});
  if (coerced.errors) return null;
  const variables = coerced.coerced;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === 'FragmentDefinition') fragments.set(d.name.value, d);
  // A fragment's cost depends only on the page it sits in: memoized, so that fragments spreading
  // fragments twice over cost linear time to cost (their cost itself doubles, as their response would).
  const fragmentCosts = new Map<string, number>();

  const pageSize = (def: GraphQLField<unknown, unknown>, node: Parameters<typeof getArgumentValues>[1]): number | null => {
    if (!def.args.some((a) => a.name === 'first' || a.name === 'last')) return null;
    const args = getArgumentValues(def, node, variables);
    const sizes = [args.first, args.last].filter((v): v is number => typeof v === 'number');
    return sizes.length === 0 ? options.defaultPageSize : Math.max(0, ...sizes);
  };

  const selectionCost = (set: SelectionSetNode, parent: GraphQLCompositeType, page: number | null): number => {
    let total = 0;
    for (const s of set.selections) {
      if (s.kind === 'Field') {
        const def = fieldDef(schema, parent, s.name.value);
        let cost = 1;
        if (def && s.selectionSet) {
          const child = getNamedType(def.type);
          if (isCompositeType(child)) {
            const times = page !== null && isListType(getNullableType(def.type)) ? page : 1;
            cost += times * selectionCost(s.selectionSet, child, pageSize(def, s));
          }
        }
        total += cost;
      } else if (s.kind === 'InlineFragment') {
        const type = s.typeCondition ? schema.getType(s.typeCondition.name.value) : parent;
        total += selectionCost(s.selectionSet, type && isCompositeType(type) ? type : parent, page);
      } else {
        const key = `${s.name.value}:${page}`;
        let cost = fragmentCosts.get(key);
        if (cost === undefined) {
          const f = fragments.get(s.name.value);
          const type = f && schema.getType(f.typeCondition.name.value);
          cost = f && type && isCompositeType(type) ? selectionCost(f.selectionSet, type, page) : 0;
          fragmentCosts.set(key, cost);
        }
        total += cost;
      }
    }
    return total;
  };

  try {
    return selectionCost(operation.selectionSet, root, null);
  } catch (error) {
    // An argument value that does not coerce: execution reports it.
    if (error instanceof GraphQLError) return null;
    throw error;
  }
}

/** Refuses operations whose cost, with their variables' values, exceeds `maxCost` (QUERY_TOO_COSTLY), before they run. */
export function costLimitPlugin(maxCost: number, options: CostOptions): Plugin {
  const check = (args: { schema: GraphQLSchema; document: DocumentNode; operationName?: string | null; variableValues?: Record<string, unknown> | null }) => {
    const cost = operationCost(args.schema, args.document, args.operationName, args.variableValues, options);
    if (cost === null || cost <= maxCost) return null;
    return {
      errors: [
        new GraphQLError(`Query cost limit of ${maxCost} exceeded, found ${cost} (GRAPHQL_MAX_COST: every field costs 1, a page's items count once per item)`, {
          extensions: { code: 'QUERY_TOO_COSTLY' },
        }),
      ],
    };
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = check(args);
      if (refused) setResultAndStopExecution(refused);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = check(args);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}
