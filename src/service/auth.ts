// Who is calling and what they may touch: the principal of a request (its API key's role and product
// scope), the role each GraphQL root field needs, and the Prisma filters that hide other products' data.
// Out-of-scope objects answer exactly as missing ones do (null, NOT_FOUND, 404): a scoped key learns
// nothing about other products.

import type { Prisma } from '../generated/prisma/client.ts';
import type { ApiKeyRole } from '../generated/prisma/enums.ts';

export type Role = ApiKeyRole;

export interface Principal {
  /** The key's id (logged; never the secret). */
  keyId: string;
  role: Role;
  /** null: every product; otherwise only these products' ids. */
  productIds: readonly string[] | null;
}

const RANK: Record<Role, number> = { VIEWER: 1, STATION: 2, ADMIN: 3 };

/** Roles are nested: ADMIN can do what STATION can, STATION what VIEWER can. */
export function hasRole(p: Principal, needed: Role): boolean {
  return RANK[p.role] >= RANK[needed];
}

/**
 * The least role each root field needs. Every root field of the schema must be listed (the server
 * refuses to start otherwise), so a new operation is never reachable by accident.
 */
export const OPERATION_ROLES: Record<'Query' | 'Mutation' | 'Subscription', Record<string, Role>> = {
  Query: {
    node: 'VIEWER',
    product: 'VIEWER',
    products: 'VIEWER',
    inspection: 'VIEWER',
    inspections: 'VIEWER',
    inspectionStats: 'VIEWER',
    currentApiKey: 'VIEWER',
    apiKeys: 'ADMIN',
  },
  Mutation: {
    submitInspection: 'STATION',
    reprocessInspection: 'STATION',
    createProduct: 'ADMIN',
    addNominalSamples: 'ADMIN',
    setProductOptionLimits: 'ADMIN',
    deleteInspection: 'ADMIN',
    createApiKey: 'ADMIN',
    revokeApiKey: 'ADMIN',
  },
  Subscription: {
    inspectionUpdated: 'VIEWER',
    inspectionCompleted: 'VIEWER',
  },
};

/** The file routes (/files/inspections/...) need this role (and the inspection in scope). */
export const FILE_ROLE: Role = 'VIEWER';

export function inScope(p: Principal, productId: string): boolean {
  return p.productIds === null || p.productIds.includes(productId);
}

/** Products the principal may see. */
export function productScope(p: Principal): Prisma.ProductWhereInput {
  return p.productIds === null ? {} : { id: { in: [...p.productIds] } };
}

/** Inspections the principal may see. */
export function inspectionScope(p: Principal): Prisma.InspectionWhereInput {
  return p.productIds === null ? {} : { productId: { in: [...p.productIds] } };
}
