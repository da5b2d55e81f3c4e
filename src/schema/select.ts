// Pothos' Prisma plugin passes resolvers the selection the GraphQL query asked for; a query that selects
// only `__typename` gives an empty `select`, which Prisma refuses. Every load by id selects the id too.

export function withId<Q extends { select?: object }>(query: Q): Q {
  return query.select ? { ...query, select: { ...query.select, id: true } } : query;
}
