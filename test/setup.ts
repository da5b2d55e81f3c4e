// Every test worker provides the pretrained network's weights, as the CLI and the server do at start-up.
import { registerMobileNet } from '../src/models/nsfwjs.ts';

registerMobileNet();
