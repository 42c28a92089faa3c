// visiontune's version, written into exported models.
export const VERSION = '0.1.0';
