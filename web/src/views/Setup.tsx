// Product setup (ADMIN): create a product, upload nominal samples (images for the built-in scorer, score
// maps for an external one), see the calibration summary and whether the built-in scorer's bank is ready.

import { useEffect, useState } from 'preact/hooks';
import { gql, upload, type Session } from '../api.ts';
import { fmt } from '../common.tsx';

interface Product {
  id: string;
  name: string;
  line: string | null;
  scorer: 'BUILTIN' | 'EXTERNAL';
  nominalImageCount: number;
  nominalScoreMapCount: number;
  calibration: { count: number; width: number; height: number; imageScoreMean: number; imageScoreStd: number; imageScoreMax: number; maxScore: number } | null;
  scorerBank: { images: number; patches: number; sourcePatches: number; modality: string; size: number } | null;
}

const PRODUCTS = `{ products { id name line scorer nominalImageCount nominalScoreMapCount
  calibration { count width height imageScoreMean imageScoreStd imageScoreMax maxScore }
  scorerBank { images patches sourcePatches modality size } } }`;

export function Setup(props: { session: Session }) {
  const { session } = props;
  const [products, setProducts] = useState<Product[] | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const reload = () => gql<{ products: Product[] }>(session.key, PRODUCTS).then((d) => setProducts(d.products), (e: Error) => setNotice(e.message));
  useEffect(() => void reload(), [session.key]);

  const create = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    setBusy(true);
    try {
      const d = await gql(session.key, `mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Error { code message } } }`, {
        input: { name: String(form.get('name') ?? ''), line: String(form.get('line') ?? '') || null, scorer: String(form.get('scorer')) },
      });
      const r = d.createProduct;
      if (r.__typename === 'CreateProductSuccess') (e.target as HTMLFormElement).reset();
      // The list first, then the notice: when it says done, the table shows it.
      await reload();
      setNotice(r.__typename === 'CreateProductSuccess' ? `Created ${form.get('name')}.` : `${r.code}: ${r.message}`);
    } catch (err) {
      setNotice((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const addSamples = async (p: Product, input: HTMLInputElement) => {
    const files = [...(input.files ?? [])];
    if (!files.length) return setNotice('choose one or more files first');
    setBusy(true);
    setNotice(`Uploading ${files.length} file(s) to ${p.name}…`);
    try {
      const variable = p.scorer === 'BUILTIN' ? 'images' : 'scoreMaps';
      const d = await upload(
        session.key,
        `mutation($id: ID!, $images: [File!], $scoreMaps: [File!]) { addNominalSamples(productId: $id, images: $images, scoreMaps: $scoreMaps) { __typename ... on Error { code message } } }`,
        { id: p.id, images: null, scoreMaps: null },
        { [variable]: files },
      );
      const r = d.addNominalSamples;
      input.value = '';
      await reload();
      setNotice(r.__typename === 'AddNominalSamplesSuccess' ? `Added ${files.length} nominal sample(s) to ${p.name}.` : `${r.code}: ${r.message}`);
    } catch (err) {
      setNotice((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h2>New product</h2>
      <form class="toolbar" onSubmit={create}>
        <label>
          Name <input name="name" required />
        </label>
        <label>
          Line <input name="line" />
        </label>
        <label>
          Scorer{' '}
          <select name="scorer">
            <option value="EXTERNAL">external (stations upload score maps)</option>
            <option value="BUILTIN">built-in (PatchCore on nominal images)</option>
          </select>
        </label>
        <button disabled={busy}>Create</button>
      </form>
      {notice && <p class="notice">{notice}</p>}
      <h2>Products</h2>
      {!products ? (
        <p>Loading…</p>
      ) : (
        <table data-testid="products">
          <thead>
            <tr>
              <th>Name</th>
              <th>Scorer</th>
              <th class="num">Nominal samples</th>
              <th>Calibration</th>
              <th>Built-in bank</th>
              <th>Add nominal samples</th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr key={p.id}>
                <td>
                  {p.name}
                  {p.line && <small> ({p.line})</small>}
                </td>
                <td>{p.scorer}</td>
                <td class="num">{p.scorer === 'BUILTIN' ? p.nominalImageCount : p.nominalScoreMapCount}</td>
                <td>
                  {p.calibration
                    ? `${p.calibration.count} maps, ${p.calibration.width}×${p.calibration.height}; image score ${fmt.score(p.calibration.imageScoreMean)} ± ${fmt.score(p.calibration.imageScoreStd)} (max ${fmt.score(p.calibration.imageScoreMax)})`
                    : 'not calibrated'}
                </td>
                <td>{p.scorer !== 'BUILTIN' ? '–' : p.scorerBank ? `ready: ${p.scorerBank.patches} of ${p.scorerBank.sourcePatches} patches from ${p.scorerBank.images} images (${p.scorerBank.modality})` : 'not built (add nominal images)'}</td>
                <td>
                  <input type="file" multiple accept={p.scorer === 'BUILTIN' ? 'image/png,image/jpeg,image/tiff' : '.npy,.png,.tif,.tiff'} onChange={(e) => addSamples(p, e.target as HTMLInputElement)} disabled={busy} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
